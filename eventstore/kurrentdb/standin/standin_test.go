package standin_test

import (
	"context"
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
