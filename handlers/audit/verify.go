package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
)

// Place locates an event in the log being checked.
type Place struct {
	// Line is the event's line in an exported file (1-based); 0 when reading a store.
	Line     int       `json:"line,omitempty"`
	Position uint64    `json:"position"`
	Index    int       `json:"index"`
	Stream   string    `json:"stream"`
	Version  uint64    `json:"version"`
	EventID  uuid.UUID `json:"eventId"`
	Type     string    `json:"type"`
}

func placeOf(env eventstore.Envelope, line int) Place {
	return Place{Line: line, Position: env.Position, Index: env.Index, Stream: env.Stream,
		Version: env.StreamVersion, EventID: env.ID, Type: env.Type}
}

func (p Place) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	fmt.Fprintf(&b, "%s version %d (%s %s) at position %d", p.Stream, p.Version, p.Type, p.EventID, p.Position)
	if p.Index > 0 {
		fmt.Fprintf(&b, " #%d", p.Index)
	}
	return b.String()
}

// BreakKind says what kind of damage a Break is.
type BreakKind string

const (
	// BrokenLink: an event's prevHash is not the hash of the event before it in its stream:
	// that event was changed, or one was removed or moved in between.
	BrokenLink BreakKind = "broken-link"
	// VersionGap: a stream skips versions (events removed) or does not start at 0.
	VersionGap BreakKind = "version-gap"
	// VersionOrder: a stream goes back to a version it already had (reordered or repeated).
	VersionOrder BreakKind = "version-order"
	// PositionOrder: the log's positions go backwards (events reordered).
	PositionOrder BreakKind = "position-order"
	// CommitShape: a commit's events are not its Index 0..Count-1 of one stream, in order.
	CommitShape BreakKind = "commit-shape"
	// DigestMismatch: the log digest at a position is not the one recorded for it; the
	// stream chains cannot see a change to a stream's last event or the removal of whole
	// stream tails, the digest can.
	DigestMismatch BreakKind = "digest-mismatch"
	// Unreadable: a line of an exported file is not an event or the trailer.
	Unreadable BreakKind = "unreadable"
	// Truncated: an exported file ends without its trailer, or holds fewer events than it says.
	Truncated BreakKind = "truncated"
)

// Break is the first place where the log is found not to be what was written.
type Break struct {
	Kind BreakKind `json:"kind"`
	// At is the event where the break was found.
	At Place `json:"at"`
	// Prev is the event At was checked against, when there is one: the previous event of
	// the stream for a chain break, the previous event of the log for an order break.
	Prev   *Place `json:"prev,omitempty"`
	Detail string `json:"detail"`
}

func (b *Break) Error() string {
	s := fmt.Sprintf("%s at %s: %s", b.Kind, b.At, b.Detail)
	if b.Prev != nil {
		s += fmt.Sprintf(" (checked against %s)", b.Prev)
	}
	return s
}

// Expect is a digest recorded earlier for a position, e.g. printed by verify-chain or
// kept by an anchoring job: the log must still have that digest there.
type Expect struct {
	Position uint64
	Digest   string
}

// Report is the outcome of a verification that found no break.
type Report struct {
	Digest  Digest `json:"digest"`
	Streams int    `json:"streams"`
	// Checked is whether an Expect was given and held.
	Checked bool `json:"expectChecked"`
}

type tail struct {
	version uint64
	hash    string
	place   Place
}

// Verifier checks a log fed to it in global order: the per-stream hash chains (each
// prevHash is the hash of the stream's previous event, versions dense from 0), the shape of
// commits, the order of positions, and optionally a digest recorded for a position.
// It stops at the first Break.
type Verifier struct {
	dig     Digester
	streams map[string]tail
	last    Place
	lastCnt int
	started bool
	expect  *Expect
	checked bool
	broken  *Break
}

// NewVerifier starts a verification; expect, when given, is checked too.
func NewVerifier(expect *Expect) *Verifier {
	return &Verifier{streams: map[string]tail{}, expect: expect}
}

// Add checks the next event of the log (line is its line in a file, or 0) and returns
// the first Break found so far.
func (v *Verifier) Add(env eventstore.Envelope, line int) *Break {
	if v.broken != nil {
		return v.broken
	}
	at := placeOf(env, line)
	if b := v.orderBreak(env, at); b != nil {
		v.broken = b
		return b
	}
	if v.expect != nil && !v.checked && env.Position > v.expect.Position {
		if b := v.checkExpect(&at); b != nil {
			return b
		}
	}
	t, seen := v.streams[env.Stream]
	if b := chainBreak(env, at, t, seen); b != nil {
		v.broken = b
		return b
	}
	h := v.dig.Add(env)
	v.streams[env.Stream] = tail{version: env.StreamVersion, hash: h, place: at}
	v.last, v.lastCnt, v.started = at, env.Count, true
	return nil
}

// orderBreak checks env, at at, against the event before it in the log: positions in
// order, and each commit's events whole and in their order.
func (v *Verifier) orderBreak(env eventstore.Envelope, at Place) *Break {
	if v.started {
		last := v.last
		switch {
		case env.Position < last.Position:
			return newBreak(PositionOrder, at, &last, "position %d comes after position %d: events were reordered", env.Position, last.Position)
		case env.Position == last.Position:
			if env.Index != last.Index+1 || env.Count != v.lastCnt || env.Stream != last.Stream {
				return newBreak(CommitShape, at, &last, "event #%d of %d of commit %d follows #%d of %d (%s): the commit's events were removed, reordered or mixed",
					env.Index, env.Count, env.Position, last.Index, v.lastCnt, last.Stream)
			}
		case last.Index != v.lastCnt-1:
			return newBreak(CommitShape, at, &last, "commit %d ends after event #%d of %d: events were removed", last.Position, last.Index, v.lastCnt)
		}
	}
	if env.Position != v.last.Position || !v.started {
		if env.Index != 0 || env.Count < 1 {
			return newBreak(CommitShape, at, nil, "a commit starts with event #%d of %d: events were removed or reordered", env.Index, env.Count)
		}
	}
	if env.Index >= env.Count {
		return newBreak(CommitShape, at, nil, "event #%d of a commit of %d", env.Index, env.Count)
	}
	return nil
}

// chainBreak checks env, at at, against the stream's last event so far, t (seen false for
// a stream not met yet): versions one after the other, each linked to the hash of the one
// before.
func chainBreak(env eventstore.Envelope, at Place, t tail, seen bool) *Break {
	switch {
	case !seen && env.StreamVersion != 0:
		return newBreak(VersionGap, at, nil, "the stream's first event has version %d: versions 0..%d were removed", env.StreamVersion, env.StreamVersion-1)
	case !seen && env.Metadata.PrevHash != "":
		return newBreak(BrokenLink, at, nil, "the stream's first event has a prevHash (%s): the events before it were removed", short(env.Metadata.PrevHash))
	case seen && env.StreamVersion <= t.version:
		return newBreak(VersionOrder, at, &t.place, "version %d comes after version %d: events of the stream were reordered or repeated", env.StreamVersion, t.version)
	case seen && env.StreamVersion != t.version+1:
		return newBreak(VersionGap, at, &t.place, "version %d follows version %d: versions %d..%d were removed", env.StreamVersion, t.version, t.version+1, env.StreamVersion-1)
	case seen && env.Metadata.PrevHash != t.hash:
		return newBreak(BrokenLink, at, &t.place, "prevHash %s is not the hash %s of version %d: version %d was changed, or an event was removed or moved",
			short(env.Metadata.PrevHash), short(t.hash), t.version, t.version)
	}
	return nil
}

// newBreak is a Break of kind found at at, checked against prev when there is one.
func newBreak(kind BreakKind, at Place, prev *Place, format string, args ...any) *Break {
	return &Break{Kind: kind, At: at, Prev: prev, Detail: fmt.Sprintf(format, args...)}
}

func (v *Verifier) checkExpect(at *Place) *Break {
	v.checked = true
	d := v.dig.Digest()
	if !strings.EqualFold(d.Sum, v.expect.Digest) {
		var prev *Place
		if v.started {
			p := v.last
			prev = &p
		}
		b := &Break{Kind: DigestMismatch, Prev: prev,
			Detail: fmt.Sprintf("the log digest up to position %d is %s (%d events), not the recorded %s: an event at or before it was changed, removed or reordered",
				v.expect.Position, d.Sum, d.Events, v.expect.Digest)}
		if at != nil {
			b.At = *at
		} else if prev != nil {
			b.At = *prev
		}
		v.broken = b
		return b
	}
	return nil
}

// Digest is the running log digest of what was added so far.
func (v *Verifier) Digest() Digest { return v.dig.Digest() }

// Finish ends the verification: the last commit must be whole, and an expected digest
// whose position was not passed is checked against the digest of the whole log.
func (v *Verifier) Finish() (Report, *Break) {
	if v.broken != nil {
		return Report{}, v.broken
	}
	if v.started && v.last.Index != v.lastCnt-1 {
		last := v.last
		v.broken = &Break{Kind: CommitShape, At: last, Detail: fmt.Sprintf("the log ends inside commit %d, after event #%d of %d: events were removed", last.Position, last.Index, v.lastCnt)}
		return Report{}, v.broken
	}
	if v.expect != nil && !v.checked {
		if b := v.checkExpect(nil); b != nil {
			return Report{}, b
		}
	}
	return Report{Digest: v.dig.Digest(), Streams: len(v.streams), Checked: v.expect != nil}, nil
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// VerifyStore checks every stream and the whole log of a store, from the first event to
// the head, in pages of page events (0: 1000). progress, when not nil, is told of each page.
func VerifyStore(ctx context.Context, store eventstore.Store, expect *Expect, progress Progress) (Report, error) {
	v := NewVerifier(expect)
	err := readAll(ctx, store, 0, progress, func(env eventstore.Envelope) error {
		if b := v.Add(env, 0); b != nil {
			return b
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	r, b := v.Finish()
	if b != nil {
		return Report{}, b
	}
	return r, nil
}
