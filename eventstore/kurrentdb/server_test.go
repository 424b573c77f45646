package kurrentdb_test

// Tests of how the adapter meets the server's sharp edges, against the STAND-IN of
// KurrentDB (see the standin package comment for what it models of the server and what it
// does not): positions, re-appends answered without a position or not at all, size limits,
// deleted streams, other applications' streams.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
)

// On the server each event has its own position; the store answers one per commit, the
// last event's, which is what the append answered.
func TestEventsOfACommitCarryTheLastEventsPosition(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	r, err := s.Append(ctx(t), stream, eventstore.NoStream, evs(3, "Batch")...)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rawClient(t, conn).ReadStream(ctx(t), stream, esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var raw []uint64
	for range 3 {
		e, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, e.Event.Position.Commit)
	}
	if raw[0] == raw[1] || raw[1] == raw[2] || raw[2] != r.Position {
		t.Fatalf("the server placed the events at %v and the append answered %d: not the server's shape", raw, r.Position)
	}
	got, err := s.ReadStream(ctx(t), stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got {
		if e.Position != r.Position {
			t.Fatalf("event %d at %d, want the commit's %d", i, e.Position, r.Position)
		}
	}
}

// A re-append the server answers without a position (the client turns NoPosition into 0)
// is answered from the stream: the original position.
func TestReappendAnsweredWithoutPositionReadsItFromTheStream(t *testing.T) {
	srv := standin.New()
	conn, stop := srv.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	batch := evs(2, "Batch")
	first, err := s.Append(ctx(t), stream, eventstore.NoStream, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx(t), stream, eventstore.Exact(1), ev("Later")); err != nil {
		t.Fatal(err)
	}
	srv.AnswerRetriesWithoutPosition(true)
	raw, err := rawClient(t, conn).AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}},
		esdb.EventData{EventID: batch[0].ID, EventType: "Batch", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)},
		esdb.EventData{EventID: batch[1].ID, EventType: "Batch", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
	if err != nil || raw.CommitPosition != 0 {
		t.Fatalf("raw re-append: %+v, %v; want the client's position 0", raw, err)
	}
	again, err := s.Append(ctx(t), stream, eventstore.NoStream, batch...)
	if err != nil || again != first {
		t.Fatalf("re-append answered %+v, %v; want %+v", again, err, first)
	}
}

// An append whose answer never comes (the server drops a re-append it cannot check yet)
// ends at the client's deadline; the adapter tries again, and the retry is recognised.
func TestAppendLeftUnansweredIsTriedAgain(t *testing.T) {
	srv := standin.New()
	conn, stop := srv.Start()
	defer stop()
	s := open(t, conn+"&defaultDeadline=300")
	for _, exp := range []eventstore.Expected{eventstore.NoStream, eventstore.Any} {
		stream := eventstore.StreamName("order", uuid.New())
		batch := evs(2, "Batch")
		srv.LeaveAppendsUnanswered(1)
		r, err := s.Append(ctx(t), stream, exp, batch...)
		if err != nil {
			t.Fatalf("expected %s: append left unanswered once: %v", exp, err)
		}
		got, err := s.ReadStream(ctx(t), stream, 0)
		if err != nil || len(got) != 2 || got[1].Position != r.Position || r.Version != 1 {
			t.Fatalf("expected %s: answered %+v; stream %+v (%v): want the batch once", exp, r, got, err)
		}
	}
}

// A position that is not a record's start is refused by the server; the store says
// ErrInvalidPosition rather than retrying for ever.
func TestPositionNotAnsweredIsRefused(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	r, err := s.Append(ctx(t), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, evs(2, "Batch")...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(ctx(t), r.Position-1, 10); !errors.Is(err, eventstore.ErrInvalidPosition) {
		t.Fatalf("ReadAll after %d: %v, want ErrInvalidPosition", r.Position-1, err)
	}
	err = s.Subscribe(ctx(t), r.Position+1, func(eventstore.Envelope) error { return nil })
	if !errors.Is(err, eventstore.ErrInvalidPosition) {
		t.Fatalf("Subscribe after %d: %v, want ErrInvalidPosition", r.Position+1, err)
	}
}

// A position inside a commit (an older adapter's checkpoint was a commit's first event):
// the rest of that commit is taken as already seen, and what follows is whole commits.
func TestPositionInsideACommitSkipsItsRest(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, evs(3, "Batch")...); err != nil {
		t.Fatal(err)
	}
	next := ev("Next")
	if _, err := s.Append(ctx(t), stream, eventstore.Exact(2), next); err != nil {
		t.Fatal(err)
	}
	rs, err := rawClient(t, conn).ReadStream(ctx(t), stream, esdb.ReadStreamOptions{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	first, err := rs.Recv()
	rs.Close()
	if err != nil {
		t.Fatal(err)
	}
	inside := first.Event.Position.Commit
	got, err := s.ReadAll(ctx(t), inside, 10)
	if err != nil || len(got) != 1 || got[0].ID != next.ID {
		t.Fatalf("ReadAll from inside a commit: %+v, %v; want only the next commit", got, err)
	}
	var sub []eventstore.Envelope
	err = s.Subscribe(ctx(t), inside, func(e eventstore.Envelope) error { sub = append(sub, e); return errDone })
	if !errors.Is(err, errDone) || sub[0].ID != next.ID {
		t.Fatalf("Subscribe from inside a commit: %+v, %v", sub, err)
	}
}

// The server's default MaxAppendSize counts metadata too: an append over it is refused
// with ErrInvalidAppend, by the adapter before sending or by the server, and writes nothing.
func TestOversizeAppendIsInvalid(t *testing.T) {
	srv := standin.New()
	conn, stop := srv.Start()
	defer stop()
	big := ev("Big")
	big.Payload = json.RawMessage(`"` + strings.Repeat("x", eventstore.MaxPayload-2) + `"`)
	stream := eventstore.StreamName("order", uuid.New())
	defaults := openWith(t, conn, kurrentdb.Options{MaxAppendSize: kurrentdb.DefaultMaxAppendSize})
	if _, err := defaults.Append(ctx(t), stream, eventstore.NoStream, big); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("adapter at the server's default: %v, want ErrInvalidAppend", err)
	}
	// An adapter that thinks the server takes more: the server's refusal maps the same.
	optimist := openWith(t, conn, kurrentdb.Options{MaxAppendSize: 4 << 20})
	if _, err := optimist.Append(ctx(t), stream, eventstore.NoStream, big); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("server's refusal: %v, want ErrInvalidAppend", err)
	}
	if _, err := optimist.ReadStream(ctx(t), stream, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("after refused appends: %v, want no stream", err)
	}
}

// A stream deleted with the server's own tools: soft-deleted reads as missing and can be
// written again; tombstoned is ErrStreamDeleted both ways. The deletion's system events in
// $all are not ours.
func TestDeletedStreams(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	raw := rawClient(t, conn)
	soft := eventstore.StreamName("order", uuid.New())
	hard := eventstore.StreamName("order", uuid.New())
	for _, stream := range []string{soft, hard} {
		if _, err := s.Append(ctx(t), stream, eventstore.NoStream, evs(2, "Opened")...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.DeleteStream(ctx(t), soft, esdb.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.TombstoneStream(ctx(t), hard, esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadStream(ctx(t), soft, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("read soft-deleted: %v, want ErrStreamNotFound", err)
	}
	again := ev("Again")
	if r, err := s.Append(ctx(t), soft, eventstore.NoStream, again); err != nil || r.Version != 2 {
		t.Fatalf("append to soft-deleted: %+v, %v", r, err)
	}
	if got, err := s.ReadStream(ctx(t), soft, 0); err != nil || len(got) != 1 || got[0].ID != again.ID {
		t.Fatalf("read soft-deleted then written: %+v, %v", got, err)
	}
	if _, err := s.ReadStream(ctx(t), hard, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read tombstoned: %v, want ErrStreamDeleted", err)
	}
	for _, exp := range []eventstore.Expected{eventstore.Any, eventstore.Exact(1), eventstore.NoStream} {
		if _, err := s.Append(ctx(t), hard, exp, ev("Late")); !errors.Is(err, eventstore.ErrStreamDeleted) {
			t.Fatalf("append to tombstoned (%s): %v, want ErrStreamDeleted", exp, err)
		}
	}
	all, err := s.ReadAll(ctx(t), 0, 100)
	if err != nil || len(all) != 5 {
		t.Fatalf("ReadAll: %d events, %v; want the 5 appended, no system event", len(all), err)
	}
}

// Two applications in one database, both with <category>-<uuid> streams: with a prefix,
// each store sees its own only; without one, the prefixed streams are not taken either.
func TestStreamPrefixTellsApplicationsApart(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	ours := openWith(t, conn, kurrentdb.Options{StreamPrefix: "spaceorders."})
	theirs := openWith(t, conn, kurrentdb.Options{StreamPrefix: "billing:"})
	bare := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	mine, theirEv, bareEv := ev("Mine"), ev("Theirs"), ev("Bare")
	r, err := ours.Append(ctx(t), stream, eventstore.NoStream, mine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := theirs.Append(ctx(t), stream, eventstore.NoStream, theirEv); err != nil {
		t.Fatalf("the same stream name in another application: %v", err)
	}
	if _, err := bare.Append(ctx(t), stream, eventstore.NoStream, bareEv); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    *kurrentdb.Store
		want uuid.UUID
	}{{ours, mine.ID}, {theirs, theirEv.ID}, {bare, bareEv.ID}} {
		got, err := tc.s.ReadStream(ctx(t), stream, 0)
		if err != nil || len(got) != 1 || got[0].ID != tc.want || got[0].Stream != stream {
			t.Fatalf("ReadStream: %+v, %v", got, err)
		}
		all, err := tc.s.ReadAll(ctx(t), 0, 10)
		if err != nil || len(all) != 1 || all[0].ID != tc.want || all[0].Stream != stream {
			t.Fatalf("ReadAll: %+v, %v", all, err)
		}
		var sub []eventstore.Envelope
		c, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
		_ = tc.s.Subscribe(c, 0, func(e eventstore.Envelope) error { sub = append(sub, e); return nil })
		cancel()
		if len(sub) != 1 || sub[0].ID != tc.want {
			t.Fatalf("Subscribe: %+v", sub)
		}
	}
	if h, err := ours.Head(ctx(t)); err != nil || h != r.Position {
		t.Fatalf("head %d, %v; want %d", h, err, r.Position)
	}
	if _, err := kurrentdb.Open(ctx(t), conn, kurrentdb.Options{StreamPrefix: "$system"}); err == nil {
		t.Fatal("a prefix starting with $ was accepted")
	}
}
