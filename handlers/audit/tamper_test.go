package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
)

type line struct {
	text string
	env  eventstore.Envelope
}

// lines splits an export into its event lines (with their envelopes) and its trailer.
func lines(t *testing.T, file []byte) ([]line, string) {
	t.Helper()
	var out []line
	raw := strings.Split(strings.TrimSuffix(string(file), "\n"), "\n")
	_, err := audit.ReadExport(bytes.NewReader(file), func(env eventstore.Envelope, n int) error {
		out = append(out, line{raw[n-1], env})
		return nil
	})
	if err != nil {
		t.Fatalf("read export: %v", err)
	}
	return out, raw[len(raw)-1]
}

func join(ls []line, trailer string) []byte {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.text + "\n")
	}
	if trailer != "" {
		b.WriteString(trailer + "\n")
	}
	return []byte(b.String())
}

// nextInStream is the index of the event after ls[i] in the same stream, or -1.
func nextInStream(ls []line, i int) int {
	for j := i + 1; j < len(ls); j++ {
		if ls[j].env.Stream == ls[i].env.Stream {
			return j
		}
	}
	return -1
}

func asBreak(t *testing.T, err error) *audit.Break {
	t.Helper()
	var b *audit.Break
	if !errors.As(err, &b) {
		t.Fatalf("want a *audit.Break, got %v", err)
	}
	return b
}

func TestVerifyChainLocatesTamperingInAnExport(t *testing.T) {
	src := embedded(t)
	seed(t, src, 3)
	file, d := export(t, src)
	ls, trailer := lines(t, file)
	// The first event of the second subscription (line index i) has successors in its stream.
	i := 0
	for i < len(ls) && !(ls[i].env.Type == "SubscriptionOpened" && i > 0) {
		i++
	}
	next := nextInStream(ls, i)
	if next < 0 || ls[i].env.Count != 1 {
		t.Fatalf("seed has no single-event commit with a successor at %d", i)
	}

	t.Run("changed byte", func(t *testing.T) {
		ls := append([]line(nil), ls...)
		changed := strings.Replace(ls[i].text, "Rossi", "Rosso", 1)
		if changed == ls[i].text {
			t.Fatal("nothing to change")
		}
		ls[i].text = changed
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		if b.Kind != audit.BrokenLink || b.At.Line != next+1 || b.Prev == nil || b.Prev.Line != i+1 {
			t.Fatalf("break %v: want a broken link at line %d pointing at line %d", b, next+1, i+1)
		}
	})
	t.Run("changed byte in a stream's last event", func(t *testing.T) {
		ls := append([]line(nil), ls...)
		last := len(ls) - 1
		ls[last].text = strings.Replace(ls[last].text, `"app"`, `"web"`, 1)
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		if b.Kind != audit.DigestMismatch {
			t.Fatalf("break %v: want the trailer's digest to catch it", b)
		}
	})
	t.Run("removed event", func(t *testing.T) {
		ls := append(append([]line(nil), ls[:i+1]...), ls[i+2:]...) // the event after i in the log
		removed := i + 1
		for removed < len(ls) && nextInStream(ls, removed) < 0 {
			removed++
		}
		ls = append(append([]line(nil), ls[:removed]...), ls[removed+1:]...)
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		if b.Kind != audit.VersionGap && b.Kind != audit.CommitShape {
			t.Fatalf("break %v: want a version gap", b)
		}
	})
	t.Run("removed last event", func(t *testing.T) {
		b := asBreak(t, verifyFile(join(ls[:len(ls)-1], trailer), nil))
		if b.Kind != audit.Truncated {
			t.Fatalf("break %v: want truncated", b)
		}
		// Without the trailer, only a digest recorded earlier can tell.
		b = asBreak(t, verifyFile(join(ls[:len(ls)-1], ""), &audit.Expect{Position: d.Position, Digest: d.Sum}))
		if b.Kind != audit.DigestMismatch && b.Kind != audit.Truncated {
			t.Fatalf("break %v: want a digest mismatch", b)
		}
	})
	t.Run("reordered pair", func(t *testing.T) {
		ls := append([]line(nil), ls...)
		ls[i], ls[i+1] = ls[i+1], ls[i]
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		// Line i+1 now holds the stream's second event (a version gap at it), or, for a pair
		// of two streams, line i+2 goes back in position.
		if b.At.Line != i+1 && b.At.Line != i+2 {
			t.Fatalf("break %v: want it found at line %d or %d", b, i+1, i+2)
		}
	})
	t.Run("reordered pair of two streams", func(t *testing.T) {
		ls := append([]line(nil), ls...)
		j := 0
		for ls[j].env.Stream == ls[j+1].env.Stream {
			j++
		}
		ls[j], ls[j+1] = ls[j+1], ls[j]
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		if b.Kind != audit.PositionOrder || b.At.Line != j+2 || b.Prev == nil || b.Prev.Line != j+1 {
			t.Fatalf("break %v: want positions going back at line %d after line %d", b, j+2, j+1)
		}
	})
	t.Run("reordered pair with positions rewritten", func(t *testing.T) {
		ls := append([]line(nil), ls...)
		// Swap the contents of two consecutive events of one stream but keep the positions.
		a, b2 := i, next
		ea, eb := ls[a].env, ls[b2].env
		ea.Position, eb.Position = eb.Position, ea.Position
		ea.StreamVersion, eb.StreamVersion = eb.StreamVersion, ea.StreamVersion
		ls[a].text, ls[b2].text = marshal(t, eb), marshal(t, ea)
		b := asBreak(t, verifyFile(join(ls, trailer), nil))
		if b.Kind != audit.BrokenLink || b.At.Line != a+1 {
			t.Fatalf("break %v: want a broken link at line %d", b, a+1)
		}
	})
	t.Run("intact", func(t *testing.T) {
		if err := verifyFile(file, &audit.Expect{Position: d.Position, Digest: d.Sum}); err != nil {
			t.Fatal(err)
		}
	})
}

func marshal(t *testing.T, env eventstore.Envelope) string {
	var b bytes.Buffer
	if err := jsonEncode(&b, env); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func verifyFile(file []byte, expect *audit.Expect) error {
	_, err := audit.VerifyExport(bytes.NewReader(file), expect)
	return err
}

// copyLog writes src's commits into a fresh store through edit, which may change, drop or
// swap events, the way someone with access to the files could. Versions are the store's.
func copyLog(t *testing.T, src []eventstore.Envelope, edit func([]eventstore.Envelope) []eventstore.Envelope) eventstore.Store {
	t.Helper()
	dst := embedded(t)
	src = edit(append([]eventstore.Envelope(nil), src...))
	for k := 0; k < len(src); {
		j := k + 1
		for j < len(src) && src[j].Position == src[k].Position {
			j++
		}
		var data []eventstore.EventData
		for _, env := range src[k:j] {
			data = append(data, eventstore.EventData{ID: env.ID, Type: env.Type, SchemaVersion: env.SchemaVersion, Payload: env.Payload, Metadata: env.Metadata})
		}
		if _, err := dst.Append(testCtx(t), src[k].Stream, eventstore.Any, data...); err != nil {
			t.Fatalf("append: %v", err)
		}
		k = j
	}
	return dst
}

func TestVerifyChainLocatesTamperingInAStore(t *testing.T) {
	src := embedded(t)
	seed(t, src, 2)
	log := readLog(t, src)
	_, d := export(t, src)
	i := 0
	for i < len(log) && !(log[i].Type == "SubscriptionOpened" && i > 0) {
		i++
	}
	target := log[i]
	var next eventstore.Envelope
	for _, env := range log[i+1:] {
		if env.Stream == target.Stream {
			next = env
			break
		}
	}

	t.Run("changed byte", func(t *testing.T) {
		s := copyLog(t, log, func(l []eventstore.Envelope) []eventstore.Envelope {
			l[i].Payload = []byte(strings.Replace(string(l[i].Payload), "Rossi", "Rosso", 1))
			return l
		})
		_, err := audit.VerifyStore(testCtx(t), s, nil, nil)
		b := asBreak(t, err)
		if b.Kind != audit.BrokenLink || b.At.EventID != next.ID || b.Prev == nil || b.Prev.EventID != target.ID {
			t.Fatalf("break %v: want a broken link at %s pointing at %s", b, next.ID, target.ID)
		}
	})
	t.Run("removed event", func(t *testing.T) {
		s := copyLog(t, log, func(l []eventstore.Envelope) []eventstore.Envelope {
			return append(l[:i:i], l[i+1:]...)
		})
		_, err := audit.VerifyStore(testCtx(t), s, nil, nil)
		b := asBreak(t, err)
		if b.At.EventID != next.ID {
			t.Fatalf("break %v: want it found at %s, the event after the removed one", b, next.ID)
		}
	})
	t.Run("reordered pair", func(t *testing.T) {
		s := copyLog(t, log, func(l []eventstore.Envelope) []eventstore.Envelope {
			for j := i + 1; j < len(l); j++ {
				if l[j].Stream == target.Stream {
					l[i], l[j] = l[j], l[i]
					l[i].Position, l[j].Position = l[j].Position, l[i].Position
					break
				}
			}
			return l
		})
		_, err := audit.VerifyStore(testCtx(t), s, nil, nil)
		b := asBreak(t, err)
		if b.At.EventID != next.ID {
			t.Fatalf("break %v: want it found at %s, moved to the stream's start", b, next.ID)
		}
	})
	t.Run("removed last event, caught by the recorded digest", func(t *testing.T) {
		s := copyLog(t, log, func(l []eventstore.Envelope) []eventstore.Envelope { return l[:len(l)-1] })
		if _, err := audit.VerifyStore(testCtx(t), s, nil, nil); err != nil {
			t.Fatalf("the chains alone cannot see it, yet: %v", err)
		}
		_, err := audit.VerifyStore(testCtx(t), s, &audit.Expect{Position: d.Position, Digest: d.Sum}, nil)
		if b := asBreak(t, err); b.Kind != audit.DigestMismatch {
			t.Fatalf("break %v: want a digest mismatch", b)
		}
	})
	t.Run("intact copy", func(t *testing.T) {
		s := copyLog(t, log, func(l []eventstore.Envelope) []eventstore.Envelope { return l })
		r, err := audit.VerifyStore(testCtx(t), s, &audit.Expect{Position: d.Position, Digest: d.Sum}, nil)
		if err != nil || r.Digest.Sum != d.Sum || !r.Checked {
			t.Fatalf("intact copy: %+v, %v", r, err)
		}
	})
}

func jsonEncode(b *bytes.Buffer, v any) error { return json.NewEncoder(b).Encode(v) }
