package standin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
)

// The stand-in's own checks, through the real client, of the parts of the protocol the
// adapter does not use: stream subscriptions and prefix filters on $all. They check the
// stand-in against the client, not against KurrentDB.
func TestStandinStreamSubscriptionAndPrefixFilter(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	write := func(stream string) {
		t.Helper()
		d := esdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
		if _, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, d); err != nil {
			t.Fatal(err)
		}
	}
	write("a-1")
	write("b-1")
	write("a-1")

	sub, err := c.SubscribeToStream(ctx, "a-1", esdb.SubscribeToStreamOptions{From: esdb.Revision(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	all, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{"a-"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	write("a-1") // live

	next := func(s *esdb.Subscription) *esdb.RecordedEvent {
		t.Helper()
		for {
			e := s.Recv()
			switch {
			case e.SubscriptionDropped != nil:
				t.Fatalf("dropped: %v", e.SubscriptionDropped.Error)
			case e.EventAppeared != nil:
				return e.EventAppeared.Event
			}
		}
	}
	// From revision 0 is exclusive: revisions 1 and 2 follow.
	for _, want := range []uint64{1, 2} {
		if e := next(sub); e.StreamID != "a-1" || e.EventNumber != want {
			t.Fatalf("stream subscription: %s@%d, want a-1@%d", e.StreamID, e.EventNumber, want)
		}
	}
	for _, want := range []uint64{0, 1, 2} {
		if e := next(all); e.StreamID != "a-1" || e.EventNumber != want {
			t.Fatalf("filtered $all: %s@%d, want a-1@%d", e.StreamID, e.EventNumber, want)
		}
	}
}

// The stand-in's shape of positions, refusals and deletions, as the client decodes them:
// each event its own position, the append answering the last; a position inside a record
// refused; a tombstoned stream reported as deleted; an append over the size limit refused.
func TestStandinPositionsAndRefusals(t *testing.T) {
	srv := standin.New()
	srv.SetMaxAppendSize(4096)
	conn, stop := srv.Start()
	defer stop()
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	data := func(n int) esdb.EventData {
		return esdb.EventData{EventID: uuid.New(), EventType: "E", ContentType: esdb.ContentTypeJson, Data: []byte(`"` + strings.Repeat("x", n) + `"`)}
	}
	wr, err := c.AppendToStream(ctx, "a-1", esdb.AppendToStreamOptions{}, data(1), data(1), data(1))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.ReadStream(ctx, "a-1", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var pos []uint64
	for range 3 {
		e, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e.Event.Position.Commit != e.Event.Position.Prepare {
			t.Fatalf("commit %d, prepare %d: the server gives both the record's offset", e.Event.Position.Commit, e.Event.Position.Prepare)
		}
		pos = append(pos, e.Event.Position.Commit)
	}
	rs.Close()
	if pos[0] >= pos[1] || pos[1] >= pos[2] || wr.CommitPosition != pos[2] {
		t.Fatalf("positions %v, append answered %d: want one each, the last answered", pos, wr.CommitPosition)
	}
	inside, err := c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Position{Commit: pos[1] + 1, Prepare: pos[1] + 1}}, 10)
	if err == nil {
		_, err = inside.Recv()
		inside.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "invalid position") {
		t.Fatalf("read of $all from inside a record: %v, want invalid position", err)
	}
	if _, err := c.AppendToStream(ctx, "a-1", esdb.AppendToStreamOptions{}, data(2000), data(2000), data(2000)); err == nil ||
		!strings.Contains(err.Error(), "Maximum Append Size") {
		t.Fatalf("append over the size limit: %v", err)
	}
	if _, err := c.TombstoneStream(ctx, "a-1", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AppendToStream(ctx, "a-1", esdb.AppendToStreamOptions{}, data(1))
	var e *esdb.Error
	if !errors.As(err, &e) || !e.IsErrorCode(esdb.ErrorCodeStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v, want ErrorCodeStreamDeleted", err)
	}
}
