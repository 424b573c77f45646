package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
)

func newStream(category string) string { return eventstore.StreamName(category, uuid.New()) }

var eventN atomic.Int64

// event builds a valid event with a fresh id and a small distinct payload.
func event(typ string) eventstore.EventData {
	n := eventN.Add(1)
	return eventstore.EventData{
		ID:            uuid.New(),
		Type:          typ,
		SchemaVersion: 1,
		Payload:       json.RawMessage(fmt.Sprintf(`{"n":%d,"note":"a <b> & c"}`, n)),
		Metadata: eventstore.Metadata{
			CorrelationID: uuid.NewString(),
			CausationID:   uuid.NewString(),
			Actor:         "customer:42",
			Channel:       "panel",
			PrevHash:      strings.Repeat("ab", 32),
			OccurredAt:    time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC),
		},
	}
}

func events(n int, typ string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = event(typ)
	}
	return out
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.Expected, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	r, err := s.Append(ctxT(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (%s): %v", len(evs), stream, exp, err)
	}
	return r
}

func mustRead(t *testing.T, s eventstore.Store, stream string, from uint64) []eventstore.Envelope {
	t.Helper()
	got, err := s.ReadStream(ctxT(t), stream, from)
	if err != nil {
		t.Fatalf("read %s from %d: %v", stream, from, err)
	}
	return got
}

func readAll(t *testing.T, s eventstore.Store) []eventstore.Envelope {
	t.Helper()
	var all []eventstore.Envelope
	var after uint64
	for {
		page, err := s.ReadAll(ctxT(t), after, 500)
		if err != nil {
			t.Fatalf("read all after %d: %v", after, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

func sameMetadata(a, b eventstore.Metadata) bool {
	return a.CorrelationID == b.CorrelationID && a.CausationID == b.CausationID && a.Actor == b.Actor &&
		a.Channel == b.Channel && a.PrevHash == b.PrevHash && a.OccurredAt.Equal(b.OccurredAt)
}

// checkEvent compares what was appended with what is read back.
func checkEvent(t *testing.T, got eventstore.Envelope, want eventstore.EventData, stream string, version uint64) {
	t.Helper()
	if got.ID != want.ID || got.Stream != stream || got.Type != want.Type || got.SchemaVersion != want.SchemaVersion || got.StreamVersion != version {
		t.Errorf("envelope %s %s %s v%d sv%d, want %s %s %s v%d sv%d",
			got.ID, got.Stream, got.Type, got.StreamVersion, got.SchemaVersion,
			want.ID, stream, want.Type, version, want.SchemaVersion)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("payload of %s = %q, want %q", want.ID, got.Payload, want.Payload)
	}
	if !sameMetadata(got.Metadata, want.Metadata) {
		t.Errorf("metadata of %s = %+v, want %+v", want.ID, got.Metadata, want.Metadata)
	}
}

func wantWrongVersion(t *testing.T, err error, stream string, actual uint64, exists bool) {
	t.Helper()
	var w *eventstore.WrongVersionError
	if !errors.As(err, &w) {
		t.Fatalf("error %v, want *eventstore.WrongVersionError", err)
	}
	if w.Stream != stream || w.Exists != exists || (exists && w.Actual != actual) {
		t.Fatalf("wrong version error %+v, want stream %s actual %d exists %v", w, stream, actual, exists)
	}
}

func streamLen(t *testing.T, s eventstore.Store, stream string) int {
	t.Helper()
	got, err := s.ReadStream(ctxT(t), stream, 0)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return len(got)
}

func testRoundTrip(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	before := time.Now()
	evs := events(3, "OrderThingHappened")
	evs[1].SchemaVersion = 2
	evs[2].Metadata = eventstore.Metadata{} // empty metadata survives as empty
	r := mustAppend(t, s, stream, eventstore.NoStream, evs...)
	after := time.Now()
	if r.Version != 2 || r.Position == 0 {
		t.Fatalf("append result %+v, want version 2 and a position", r)
	}
	got := mustRead(t, s, stream, 0)
	if len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	for i, e := range got {
		checkEvent(t, e, evs[i], stream, uint64(i))
		if e.Position != r.Position || e.Index != i || e.Count != 3 {
			t.Errorf("event %d: position %d index %d count %d, want %d %d 3", i, e.Position, e.Index, e.Count, r.Position, i)
		}
		if e.RecordedAt.Before(before.Add(-2*time.Second)) || e.RecordedAt.After(after.Add(2*time.Second)) {
			t.Errorf("event %d recorded at %s, not between %s and %s", i, e.RecordedAt, before, after)
		}
		if e.LastInCommit() != (i == 2) {
			t.Errorf("event %d LastInCommit = %v", i, e.LastInCommit())
		}
	}
	// ReadAll answers the same envelopes.
	all := readAll(t, s)
	if len(all) != 3 {
		t.Fatalf("read all: %d events, want 3", len(all))
	}
	for i := range all {
		checkEvent(t, all[i], evs[i], stream, uint64(i))
		if !all[i].RecordedAt.Equal(got[i].RecordedAt) || all[i].Position != got[i].Position {
			t.Errorf("ReadAll and ReadStream disagree on event %d: %+v vs %+v", i, all[i], got[i])
		}
	}
	// from skips earlier versions, even inside a commit.
	tail := mustRead(t, s, stream, 1)
	if len(tail) != 2 || tail[0].StreamVersion != 1 || tail[0].ID != evs[1].ID {
		t.Fatalf("read from 1: %+v", tail)
	}
	if rest := mustRead(t, s, stream, 3); len(rest) != 0 {
		t.Fatalf("read from 3 of a 3-event stream: %d events, want none", len(rest))
	}
}

func testDenseVersions(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	other := newStream("order")
	var want []eventstore.EventData
	for i := range 10 {
		n := 1 + i%3
		evs := events(n, "Happened")
		r := mustAppend(t, s, stream, eventstore.Any, evs...)
		want = append(want, evs...)
		if r.Version != uint64(len(want)-1) {
			t.Fatalf("append %d: version %d, want %d", i, r.Version, len(want)-1)
		}
		mustAppend(t, s, other, eventstore.Any, event("Interleaved"))
	}
	got := mustRead(t, s, stream, 0)
	if len(got) != len(want) {
		t.Fatalf("read %d events, want %d", len(got), len(want))
	}
	for i := range got {
		checkEvent(t, got[i], want[i], stream, uint64(i))
	}
}

func testExpectedNoStream(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("subscription")
	r := mustAppend(t, s, stream, eventstore.NoStream, event("Opened"))
	if r.Version != 0 {
		t.Fatalf("first version %d, want 0", r.Version)
	}
	head, _ := s.Head(ctxT(t))
	_, err := s.Append(ctxT(t), stream, eventstore.NoStream, event("Again"))
	wantWrongVersion(t, err, stream, 0, true)
	if n := streamLen(t, s, stream); n != 1 {
		t.Fatalf("stream has %d events after a refused append, want 1", n)
	}
	if h2, _ := s.Head(ctxT(t)); h2 != head {
		t.Fatalf("head moved from %d to %d on a refused append", head, h2)
	}
}

func testExpectedAny(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	for i := range 3 {
		r := mustAppend(t, s, stream, eventstore.Any, event("Any"))
		if r.Version != uint64(i) {
			t.Fatalf("append %d with Any: version %d", i, r.Version)
		}
	}
}

func testExpectedStreamExists(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	_, err := s.Append(ctxT(t), stream, eventstore.StreamExists, event("TooEarly"))
	wantWrongVersion(t, err, stream, 0, false)
	if n := streamLen(t, s, stream); n != 0 {
		t.Fatalf("refused append wrote %d events", n)
	}
	mustAppend(t, s, stream, eventstore.NoStream, event("Opened"))
	r := mustAppend(t, s, stream, eventstore.StreamExists, event("Next"))
	if r.Version != 1 {
		t.Fatalf("version %d, want 1", r.Version)
	}
}

func testExpectedExact(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	_, err := s.Append(ctxT(t), stream, eventstore.Exact(0), event("NoStreamYet"))
	wantWrongVersion(t, err, stream, 0, false)
	mustAppend(t, s, stream, eventstore.NoStream, events(2, "Opened")...)
	r := mustAppend(t, s, stream, eventstore.Exact(1), event("Next"))
	if r.Version != 2 {
		t.Fatalf("version %d, want 2", r.Version)
	}
	for _, stale := range []uint64{0, 1, 3, 100} {
		_, err := s.Append(ctxT(t), stream, eventstore.Exact(stale), event("Stale"))
		wantWrongVersion(t, err, stream, 2, true)
	}
	if n := streamLen(t, s, stream); n != 3 {
		t.Fatalf("stream has %d events, want 3", n)
	}
}

// ExactAt is how a caller with a cache of states appends: the version it decided on, with
// the position the store answered for it. The position saves a backend a read; it never
// decides: a stale version is refused, a stale position with the right version appends.
func testExpectedExactAt(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	r0 := mustAppend(t, s, stream, eventstore.NoStream, events(2, "Opened")...)
	next := event("Next")
	r1 := mustAppend(t, s, stream, eventstore.ExactAt(r0.Version, r0.Position), next)
	if r1.Version != 2 || r1.Position <= r0.Position {
		t.Fatalf("append at %+v: %+v, want version 2 after it", r0, r1)
	}
	// The same commit again, as a retry whose answer was lost: the first answer.
	if again := mustAppend(t, s, stream, eventstore.ExactAt(r0.Version, r0.Position), next); again != r1 {
		t.Fatalf("re-append answered %+v, want %+v", again, r1)
	}
	// A state the stream has left: refused, whatever the position says.
	_, err := s.Append(ctxT(t), stream, eventstore.ExactAt(r0.Version, r0.Position), event("Stale"))
	wantWrongVersion(t, err, stream, 2, true)
	// The right version with another commit's position (another stream's): appended.
	other := mustAppend(t, s, newStream("order"), eventstore.NoStream, event("Other"))
	if r := mustAppend(t, s, stream, eventstore.ExactAt(r1.Version, other.Position), event("AfterStale")); r.Version != 3 {
		t.Fatalf("append with a stale position: version %d, want 3", r.Version)
	}
	empty := newStream("order")
	_, err = s.Append(ctxT(t), empty, eventstore.ExactAt(0, r0.Position), event("NoStreamYet"))
	wantWrongVersion(t, err, empty, 0, false)
	if n := streamLen(t, s, stream); n != 4 {
		t.Fatalf("stream has %d events, want 4", n)
	}
	if n := streamLen(t, s, empty); n != 0 {
		t.Fatalf("a refused append wrote %d events", n)
	}
}

func testRacingExact(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	const writers, rounds = 16, 8
	ctx := ctxT(t)
	for round := range rounds {
		exp := eventstore.NoStream
		if round > 0 {
			exp = eventstore.Exact(uint64(round - 1))
		}
		var (
			wg      sync.WaitGroup
			start   = make(chan struct{})
			results = make([]eventstore.AppendResult, writers)
			errs    = make([]error, writers)
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				results[w], errs[w] = s.Append(ctx, stream, exp, event(fmt.Sprintf("Writer%d", w)))
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for w := range writers {
			if errs[w] == nil {
				winners++
				if results[w].Version != uint64(round) {
					t.Fatalf("round %d: winner got version %d", round, results[w].Version)
				}
				continue
			}
			wantWrongVersion(t, errs[w], stream, uint64(round), true)
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, winners)
		}
	}
	got := mustRead(t, s, stream, 0)
	if len(got) != rounds {
		t.Fatalf("stream has %d events, want %d", len(got), rounds)
	}
	for i, e := range got {
		if e.StreamVersion != uint64(i) {
			t.Fatalf("event %d has version %d", i, e.StreamVersion)
		}
	}
}

func testMultiEventCommit(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	mustAppend(t, s, stream, eventstore.NoStream, event("First"))
	evs := events(5, "Batch")
	r := mustAppend(t, s, stream, eventstore.Exact(0), evs...)
	if r.Version != 5 {
		t.Fatalf("version %d, want 5", r.Version)
	}
	got := mustRead(t, s, stream, 1)
	if len(got) != 5 {
		t.Fatalf("%d events, want 5", len(got))
	}
	for i, e := range got {
		checkEvent(t, e, evs[i], stream, uint64(i+1))
		if e.Position != r.Position || e.Index != i || e.Count != 5 {
			t.Fatalf("event %d: position %d index %d count %d, want %d %d 5", i, e.Position, e.Index, e.Count, r.Position, i)
		}
	}
}

func testRefusedMultiWritesNothing(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	mustAppend(t, s, stream, eventstore.NoStream, event("First"))
	_, err := s.Append(ctxT(t), stream, eventstore.Exact(7), events(4, "Refused")...)
	wantWrongVersion(t, err, stream, 0, true)
	bad := events(4, "HalfBad")
	bad[3].Payload = json.RawMessage(`{not json`)
	if _, err := s.Append(ctxT(t), stream, eventstore.Any, bad...); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("append with one bad payload: %v, want ErrInvalidAppend", err)
	}
	if n := streamLen(t, s, stream); n != 1 {
		t.Fatalf("stream has %d events after refused appends, want 1", n)
	}
	if all := readAll(t, s); len(all) != 1 {
		t.Fatalf("log has %d events after refused appends, want 1", len(all))
	}
}

func testIdempotentReappend(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	mustAppend(t, s, stream, eventstore.NoStream, event("First"))
	evs := events(3, "Retried")
	first := mustAppend(t, s, stream, eventstore.Exact(0), evs...)
	again := mustAppend(t, s, stream, eventstore.Exact(0), evs...)
	if again != first {
		t.Fatalf("re-append with the same expected version answered %+v, want %+v", again, first)
	}
	anyR := mustAppend(t, s, stream, eventstore.Any, evs...)
	if anyR != first {
		t.Fatalf("re-append with Any answered %+v, want %+v", anyR, first)
	}
	one := event("Single")
	r1 := mustAppend(t, s, stream, eventstore.Exact(3), one)
	if r2 := mustAppend(t, s, stream, eventstore.Exact(3), one); r2 != r1 {
		t.Fatalf("single-event re-append answered %+v, want %+v", r2, r1)
	}
	if n := streamLen(t, s, stream); n != 5 {
		t.Fatalf("stream has %d events, want 5", n)
	}
	if head, _ := s.Head(ctxT(t)); head != r1.Position {
		t.Fatalf("head %d, want %d: a re-append wrote something", head, r1.Position)
	}
}

// appendMixed writes commits of 1..4 events over a few streams and answers the commits'
// positions in order.
func appendMixed(t *testing.T, s eventstore.Store, commits int) []eventstore.AppendResult {
	t.Helper()
	streams := []string{newStream("order"), newStream("subscription"), newStream("order")}
	var out []eventstore.AppendResult
	for i := range commits {
		out = append(out, mustAppend(t, s, streams[i%len(streams)], eventstore.Any, events(1+i%4, "Mixed")...))
	}
	return out
}

func testGlobalOrder(t *testing.T, h Harness) {
	s := h.Store
	commits := appendMixed(t, s, 30)
	all := readAll(t, s)
	seen := map[uint64]int{}
	var prev eventstore.Envelope
	for i, e := range all {
		if i > 0 {
			if e.Position < prev.Position || (e.Position == prev.Position && e.Index != prev.Index+1) ||
				(e.Position > prev.Position && (e.Index != 0 || !prev.LastInCommit())) {
				t.Fatalf("event %d at %d/%d after %d/%d: out of order", i, e.Position, e.Index, prev.Position, prev.Index)
			}
		}
		if e.Index == 0 {
			seen[e.Position]++
		}
		prev = e
	}
	for i, c := range commits {
		if i > 0 && c.Position <= commits[i-1].Position {
			t.Fatalf("commit %d at position %d after %d", i, c.Position, commits[i-1].Position)
		}
		if seen[c.Position] != 1 {
			t.Fatalf("commit at %d seen %d times", c.Position, seen[c.Position])
		}
	}
	if len(seen) != len(commits) {
		t.Fatalf("%d commits in the log, want %d", len(seen), len(commits))
	}
}

func testReadAllPaging(t *testing.T, h Harness) {
	s := h.Store
	appendMixed(t, s, 25)
	whole := readAll(t, s)
	for _, limit := range []int{1, 3, 7} {
		var paged []eventstore.Envelope
		var after uint64
		for {
			page, err := s.ReadAll(ctxT(t), after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if page[0].Index != 0 || !page[len(page)-1].LastInCommit() {
				t.Fatalf("limit %d: page after %d splits a commit", limit, after)
			}
			if len(page) < limit && len(paged)+len(page) != len(whole) {
				t.Fatalf("limit %d: short page of %d events before the end", limit, len(page))
			}
			if n := len(page) - page[len(page)-1].Count; n >= limit {
				t.Fatalf("limit %d: page of %d events went on after the limit was reached", limit, len(page))
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Position
		}
		if len(paged) != len(whole) {
			t.Fatalf("limit %d: %d events paged, want %d", limit, len(paged), len(whole))
		}
		for i := range paged {
			if paged[i].ID != whole[i].ID || paged[i].Position != whole[i].Position {
				t.Fatalf("limit %d: event %d differs", limit, i)
			}
		}
	}
	if tail, err := s.ReadAll(ctxT(t), whole[len(whole)-1].Position, 10); err != nil || len(tail) != 0 {
		t.Fatalf("read after the end: %d events, %v", len(tail), err)
	}
}

// testOnePositionPerCommit: the position an append answers is the position of each of its
// events, as ReadStream, ReadAll and Subscribe hand them on, and a re-append answers it
// again. Commits of several events are where a backend that places events one by one
// (KurrentDB) would differ.
func testOnePositionPerCommit(t *testing.T, h Harness) {
	s := h.Store
	commits := appendMixed(t, s, 12)
	stream := newStream("order")
	batch := events(4, "Batch")
	r := mustAppend(t, s, stream, eventstore.NoStream, batch...)
	if again := mustAppend(t, s, stream, eventstore.NoStream, batch...); again != r {
		t.Fatalf("re-append answered %+v, want %+v", again, r)
	}
	commits = append(commits, r)
	answered := map[uint64]bool{}
	for _, c := range commits {
		answered[c.Position] = true
	}
	check := func(how string, evs []eventstore.Envelope) {
		t.Helper()
		byPos := map[uint64]int{}
		for _, e := range evs {
			if !answered[e.Position] {
				t.Fatalf("%s: event %s (#%d of %d) at %d, a position no append answered", how, e.ID, e.Index, e.Count, e.Position)
			}
			byPos[e.Position]++
		}
		for _, e := range evs {
			if byPos[e.Position] != e.Count {
				t.Fatalf("%s: %d events at %d, the commit holds %d", how, byPos[e.Position], e.Position, e.Count)
			}
		}
	}
	all := readAll(t, s)
	check("ReadAll", all)
	for i, e := range mustRead(t, s, stream, 0) {
		if e.Position != r.Position || e.ID != batch[i].ID {
			t.Fatalf("ReadStream: event %d at %d, want %d", i, e.Position, r.Position)
		}
	}
	// From inside the commit: the rest of it, still at its position.
	if tail := mustRead(t, s, stream, 2); len(tail) != 2 || tail[0].Position != r.Position || tail[1].Position != r.Position {
		t.Fatalf("ReadStream from version 2: %+v", tail)
	}
	var got []eventstore.Envelope
	err := s.Subscribe(ctxT(t), 0, func(e eventstore.Envelope) error {
		got = append(got, e)
		if len(got) == len(all) {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Subscribe returned %v", err)
	}
	check("Subscribe", got)
	sameEvents(t, got, all)
}

// testAfterEveryPosition: every position an append answered is a valid `after`, and what
// follows it is exactly the commits after that one, whole.
func testAfterEveryPosition(t *testing.T, h Harness) {
	s := h.Store
	commits := appendMixed(t, s, 9)
	all := readAll(t, s)
	for i, c := range commits {
		var want []eventstore.Envelope
		for _, e := range all {
			if e.Position > c.Position {
				want = append(want, e)
			}
		}
		page, err := s.ReadAll(ctxT(t), c.Position, 1)
		if err != nil {
			t.Fatalf("ReadAll after commit %d (%d): %v", i, c.Position, err)
		}
		if len(want) == 0 {
			if len(page) != 0 {
				t.Fatalf("ReadAll after the last commit: %d events", len(page))
			}
			continue
		}
		if len(page) != want[0].Count || page[0].ID != want[0].ID || page[0].Index != 0 {
			t.Fatalf("ReadAll after commit %d: %d events from %s, want the next commit's %d from %s", i, len(page), page[0].ID, want[0].Count, want[0].ID)
		}
		var got []eventstore.Envelope
		err = s.Subscribe(ctxT(t), c.Position, func(e eventstore.Envelope) error {
			got = append(got, e)
			if len(got) == len(want) {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Subscribe after commit %d returned %v", i, err)
		}
		sameEvents(t, got, want)
	}
}

// collect subscribes from after in the background until cancel; it sends each event on
// the returned channel and the Subscribe error on done.
func collect(ctx context.Context, s eventstore.Store, after uint64) (<-chan eventstore.Envelope, <-chan error) {
	out := make(chan eventstore.Envelope, 10000)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, after, func(e eventstore.Envelope) error {
			out <- e
			return nil
		})
	}()
	return out, done
}

func receive(t *testing.T, ch <-chan eventstore.Envelope, n int) []eventstore.Envelope {
	t.Helper()
	var got []eventstore.Envelope
	timeout := time.After(15 * time.Second)
	for len(got) < n {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-timeout:
			t.Fatalf("received %d of %d events", len(got), n)
		}
	}
	return got
}

func sameEvents(t *testing.T, got, want []eventstore.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Position != want[i].Position || got[i].Index != want[i].Index ||
			got[i].StreamVersion != want[i].StreamVersion || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func testSubscribeCatchUpAndLive(t *testing.T, h Harness) {
	s := h.Store
	stored := appendMixed(t, s, 20)
	checkpoint := stored[7].Position
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	ch, done := collect(ctx, s, checkpoint)
	// Appends racing with the catch-up, from several writers.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			stream := newStream("order")
			for range 15 {
				if _, err := s.Append(ctx, stream, eventstore.Any, events(2, "Live")...); err != nil {
					t.Errorf("live append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	all := readAll(t, s)
	var want []eventstore.Envelope
	for _, e := range all {
		if e.Position > checkpoint {
			want = append(want, e)
		}
	}
	got := receive(t, ch, len(want))
	sameEvents(t, got, want)
	// One more after the catch-up: followed live.
	r := mustAppend(t, s, newStream("order"), eventstore.NoStream, event("Later"))
	if e := receive(t, ch, 1)[0]; e.Position != r.Position {
		t.Fatalf("live event at %d, want %d", e.Position, r.Position)
	}
	select {
	case e := <-ch:
		t.Fatalf("extra event %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
	}
}

var errStop = errors.New("stop here")

func testSubscribeResume(t *testing.T, h Harness) {
	s := h.Store
	appendMixed(t, s, 12)
	var first []eventstore.Envelope
	err := s.Subscribe(ctxT(t), 0, func(e eventstore.Envelope) error {
		first = append(first, e)
		if len(first) >= 10 && e.LastInCommit() {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Subscribe returned %v, want fn's error", err)
	}
	appendMixed(t, s, 5) // written while "down"
	all := readAll(t, s)
	checkpoint := first[len(first)-1].Position
	var rest []eventstore.Envelope
	err = s.Subscribe(ctxT(t), checkpoint, func(e eventstore.Envelope) error {
		rest = append(rest, e)
		if len(first)+len(rest) == len(all) {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("resumed Subscribe returned %v", err)
	}
	sameEvents(t, append(first, rest...), all)
}

func testSubscribeCancel(t *testing.T, h Harness) {
	s := h.Store
	appendMixed(t, s, 3)
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	n := 0
	start := time.Now()
	err := s.Subscribe(ctx, 0, func(eventstore.Envelope) error { n++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe returned %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Subscribe took %s to see its context end", d)
	}
	if n == 0 {
		t.Fatal("Subscribe delivered nothing before its context ended")
	}
	// An already cancelled context returns at once.
	done, cancel2 := context.WithCancel(ctxT(t))
	cancel2()
	if err := s.Subscribe(done, 0, func(eventstore.Envelope) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe on a cancelled context returned %v", err)
	}
}

func testSubscribeFnError(t *testing.T, h Harness) {
	s := h.Store
	appendMixed(t, s, 3)
	calls := 0
	err := s.Subscribe(ctxT(t), 0, func(eventstore.Envelope) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Fatalf("Subscribe returned %v after %d calls, want fn's error after 1", err, calls)
	}
}

func testRestart(t *testing.T, h Harness) {
	if !h.Features.Restart {
		t.Skip("backend cannot restart")
	}
	s := h.Store
	stream := newStream("order")
	appendMixed(t, s, 10)
	mustAppend(t, s, stream, eventstore.NoStream, events(3, "BeforeRestart")...)
	before := readAll(t, s)
	head, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	s = h.Restart(t)
	sameEvents(t, readAll(t, s), before)
	if h2, err := s.Head(ctxT(t)); err != nil || h2 != head {
		t.Fatalf("head %d (%v) after restart, want %d", h2, err, head)
	}
	_, err = s.Append(ctxT(t), stream, eventstore.Exact(1), event("Stale"))
	wantWrongVersion(t, err, stream, 2, true)
	if r := mustAppend(t, s, stream, eventstore.Exact(2), event("AfterRestart")); r.Version != 3 || r.Position <= head {
		t.Fatalf("append after restart: %+v", r)
	}
}

func testPayloadLimit(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	big := event("Big")
	big.Payload = json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxPayload-2) + `"`)
	r := mustAppend(t, s, stream, eventstore.NoStream, big)
	got := mustRead(t, s, stream, 0)
	if len(got) != 1 || !bytes.Equal(got[0].Payload, big.Payload) {
		t.Fatalf("the %d-byte payload did not read back", len(big.Payload))
	}
	over := event("TooBig")
	over.Payload = json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxPayload-1) + `"`)
	if _, err := s.Append(ctxT(t), stream, eventstore.Any, over); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("payload of %d bytes: %v, want ErrInvalidAppend", len(over.Payload), err)
	}
	if n := streamLen(t, s, stream); n != 1 {
		t.Fatalf("stream has %d events, want 1", n)
	}
	if head, _ := s.Head(ctxT(t)); head != r.Position {
		t.Fatalf("head %d, want %d", head, r.Position)
	}
}

func testInvalidAppends(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	valid := func(mod func(*eventstore.EventData)) eventstore.EventData {
		e := event("Valid")
		mod(&e)
		return e
	}
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"empty stream name", "", []eventstore.EventData{event("X")}},
		{"no category", uuid.NewString(), []eventstore.EventData{event("X")}},
		{"upper case category", "Order-" + uuid.NewString(), []eventstore.EventData{event("X")}},
		{"not a uuid", "order-42", []eventstore.EventData{event("X")}},
		{"subject wildcard", "order-*", []eventstore.EventData{event("X")}},
		{"dots", "order.x-" + uuid.NewString(), []eventstore.EventData{event("X")}},
		{"no events", stream, nil},
		{"empty type", stream, []eventstore.EventData{valid(func(e *eventstore.EventData) { e.Type = "" })}},
		{"nil id", stream, []eventstore.EventData{valid(func(e *eventstore.EventData) { e.ID = uuid.Nil })}},
		{"schema version 0", stream, []eventstore.EventData{valid(func(e *eventstore.EventData) { e.SchemaVersion = 0 })}},
		{"payload not JSON", stream, []eventstore.EventData{valid(func(e *eventstore.EventData) { e.Payload = json.RawMessage("hello") })}},
		{"empty payload", stream, []eventstore.EventData{valid(func(e *eventstore.EventData) { e.Payload = nil })}},
		{"too many events", stream, events(eventstore.MaxEventsPerAppend+1, "Many")},
	}
	for _, tc := range cases {
		if _, err := s.Append(ctxT(t), tc.stream, eventstore.Any, tc.events...); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("%s: %v, want ErrInvalidAppend", tc.name, err)
		}
	}
	if head, err := s.Head(ctxT(t)); err != nil || head != 0 {
		t.Fatalf("head %d (%v) after refused appends, want 0", head, err)
	}
}

func testUnicode(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	e := event("Unicode")
	e.Payload = json.RawMessage(`{"emoji":"😀🚀👩‍👩‍👧","rtl":"שלום עולם مرحبا","nul":"a\u0000b","esc":"\"\\\/\b\f\n\r\t","html":"<script>&amp;</script>","bmp":"\ud83d\ude00","latin":"perché più"}`)
	e.Metadata.Actor = "Zoë 😀 אבי"
	e.Metadata.Channel = "app\x00nul"
	e.Metadata.CorrelationID = "مرحبا-<&>"
	mustAppend(t, s, stream, eventstore.NoStream, e)
	got := mustRead(t, s, stream, 0)
	checkEvent(t, got[0], e, stream, 0)
	var a, b any
	if err := json.Unmarshal(got[0].Payload, &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(e.Payload, &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("payload decodes to %v, want %v", a, b)
	}
	all := readAll(t, s)
	checkEvent(t, all[0], e, stream, 0)
}

func testReadStreamMissing(t *testing.T, h Harness) {
	s := h.Store
	stream := newStream("order")
	if _, err := s.ReadStream(ctxT(t), stream, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read of a missing stream: %v, want ErrStreamNotFound", err)
	}
	mustAppend(t, s, newStream("order"), eventstore.NoStream, event("Other"))
	if _, err := s.ReadStream(ctxT(t), stream, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read of a missing stream beside another: %v, want ErrStreamNotFound", err)
	}
	if _, err := s.ReadStream(ctxT(t), "not a stream", 0); err == nil {
		t.Fatal("read of an invalid stream name succeeded")
	}
}

func testHead(t *testing.T, h Harness) {
	s := h.Store
	if head, err := s.Head(ctxT(t)); err != nil || head != 0 {
		t.Fatalf("head of an empty store: %d, %v", head, err)
	}
	commits := appendMixed(t, s, 5)
	if head, err := s.Head(ctxT(t)); err != nil || head != commits[4].Position {
		t.Fatalf("head %d (%v), want %d", head, err, commits[4].Position)
	}
	if all, _ := s.ReadAll(ctxT(t), 0, 1000); all[len(all)-1].Position != commits[4].Position {
		t.Fatal("head is not the last commit ReadAll sees")
	}
}
