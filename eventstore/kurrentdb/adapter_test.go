package kurrentdb_test

// Tests of what is particular to the KurrentDB adapter, all against the in-memory STAND-IN
// of KurrentDB's Streams service: they prove how the adapter maps the client's protocol
// (errors, positions, drops, a lost server), not how the real server behaves.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func ev(typ string) eventstore.EventData {
	return eventstore.EventData{
		ID: uuid.New(), Type: typ, SchemaVersion: 1, Payload: json.RawMessage(`{}`),
		Metadata: eventstore.Metadata{CorrelationID: "corr-1", CausationID: "cause-1", Actor: "operator"},
	}
}

func evs(n int, typ string) []eventstore.EventData {
	out := make([]eventstore.EventData, n)
	for i := range out {
		out[i] = ev(typ)
	}
	return out
}

// rawClient is the esdb client itself, to write what the adapter never writes and to
// look at what it did write.
func rawClient(t *testing.T, conn string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStandinWrongExpectedVersionIsShapedForTheClient(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	c := rawClient(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	data := esdb.EventData{EventID: uuid.New(), EventType: "Opened", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	if _, err := c.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, data); err != nil {
		t.Fatal(err)
	}
	data.EventID = uuid.New()
	_, err := c.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(4)}, data)
	var e *esdb.Error
	if !errors.As(err, &e) || !e.IsErrorCode(esdb.ErrorCodeWrongExpectedVersion) {
		t.Fatalf("error %v, want ErrorCodeWrongExpectedVersion", err)
	}
	if !strings.Contains(err.Error(), "expecting '4' but got '0'") {
		t.Fatalf("error %q does not carry the revisions as the client decodes them", err)
	}
}

func TestWrongVersionMapsToWrongVersionError(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, evs(2, "Opened")...); err != nil {
		t.Fatal(err)
	}
	for _, exp := range []eventstore.Expected{eventstore.NoStream, eventstore.Exact(0), eventstore.Exact(9)} {
		_, err := s.Append(ctx(t), stream, exp, ev("Late"))
		var w *eventstore.WrongVersionError
		if !errors.As(err, &w) || w.Stream != stream || !w.Exists || w.Actual != 1 || w.Expected != exp {
			t.Fatalf("expected %s: error %#v, want WrongVersionError at version 1", exp, err)
		}
	}
	missing := eventstore.StreamName("order", uuid.New())
	_, err := s.Append(ctx(t), missing, eventstore.Exact(0), ev("Nothing"))
	var w *eventstore.WrongVersionError
	if !errors.As(err, &w) || w.Exists {
		t.Fatalf("missing stream: error %#v, want WrongVersionError without a stream", err)
	}
}

// The server looks for a retry's ids right after the expected revision; a retry whose
// expected revision does not line up with the original write is answered wrong version.
// The adapter then sees that the stream's latest commit is exactly these events and
// answers the original result.
func TestRetryAnsweredWrongVersionReturnsOriginalResult(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, ev("Opened")); err != nil {
		t.Fatal(err)
	}
	batch := evs(3, "Batch")
	first, err := s.Append(ctx(t), stream, eventstore.Exact(0), batch...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(ctx(t), stream, eventstore.Exact(1), batch...)
	if err != nil || again != first {
		t.Fatalf("retry answered %+v, %v; want %+v", again, err, first)
	}
	// The same ids as only part of the latest commit are no retry: a conflict.
	if _, err := s.Append(ctx(t), stream, eventstore.Exact(7), batch[1:]...); !eventstore.IsWrongVersion(err) {
		t.Fatalf("partial retry: %v, want a wrong version", err)
	}
	if got, _ := s.ReadStream(ctx(t), stream, 0); len(got) != 4 {
		t.Fatalf("stream has %d events, want 4", len(got))
	}
}

func TestEventMetadataCarriesCommitPlace(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	batch := evs(2, "Batch")
	batch[1].SchemaVersion = 3
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	rs, err := rawClient(t, conn).ReadStream(ctx(t), stream, esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for i := range 2 {
		e, err := rs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(e.Event.UserMetadata, &m); err != nil {
			t.Fatal(err)
		}
		if e.Event.EventID != batch[i].ID || m["index"] != float64(i) || m["count"] != 2.0 ||
			m["schemaVersion"] != float64(batch[i].SchemaVersion) || m["$correlationId"] != "corr-1" || m["actor"] != "operator" {
			t.Fatalf("event %d: id %s metadata %v", i, e.Event.EventID, m)
		}
	}
}

// KurrentDB's $all holds system events and other tools' streams; the store's view of the
// log is its own events only.
func TestSystemAndForeignEventsAreSkipped(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	s := open(t, conn)
	raw := rawClient(t, conn)
	foreign := func(stream, typ string) {
		t.Helper()
		d := esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
		if _, err := raw.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{}, d); err != nil {
			t.Fatal(err)
		}
	}
	mine := eventstore.StreamName("order", uuid.New())
	r, err := s.Append(ctx(t), mine, eventstore.NoStream, ev("Mine"))
	if err != nil {
		t.Fatal(err)
	}
	foreign("$$"+mine, "$metadata")
	foreign("inventory", "Counted")
	foreign(eventstore.StreamName("order", uuid.New()), "$system-ish")
	all, err := s.ReadAll(ctx(t), 0, 100)
	if err != nil || len(all) != 1 || all[0].Stream != mine {
		t.Fatalf("ReadAll: %+v, %v; want only %s", all, err, mine)
	}
	if h, err := s.Head(ctx(t)); err != nil || h != r.Position {
		t.Fatalf("head %d, %v; want %d", h, err, r.Position)
	}
	r2, err := s.Append(ctx(t), mine, eventstore.Exact(0), ev("Mine"))
	if err != nil {
		t.Fatal(err)
	}
	var got []eventstore.Envelope
	err = s.Subscribe(ctx(t), 0, func(e eventstore.Envelope) error {
		got = append(got, e)
		if e.Position == r2.Position {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) || len(got) != 2 || got[0].Stream != mine || got[1].Stream != mine {
		t.Fatalf("Subscribe delivered %+v (%v), want the two events of %s", got, err, mine)
	}
}

var errDone = errors.New("done")

// The stand-in drops every subscription after 4 events while commits hold 3, so each
// subscription drops one event into a commit: that event is discarded and the next
// subscription starts after the last whole commit. Then it drops the live subscription too.
func TestSubscriptionResumesAfterStandinDropsIt(t *testing.T) {
	srv := standin.New()
	conn, stop := srv.Start()
	defer stop()
	s := open(t, conn)
	srv.DropSubscriptionsAfter(4)
	var want []uuid.UUID
	for range 5 {
		batch := evs(3, "Batch")
		if _, err := s.Append(ctx(t), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, batch...); err != nil {
			t.Fatal(err)
		}
		for _, e := range batch {
			want = append(want, e.ID)
		}
	}
	c, cancel := context.WithCancel(ctx(t))
	defer cancel()
	got := make(chan eventstore.Envelope, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(c, 0, func(e eventstore.Envelope) error { got <- e; return nil })
	}()
	receive := func(n int) []uuid.UUID {
		var ids []uuid.UUID
		for range n {
			select {
			case e := <-got:
				ids = append(ids, e.ID)
			case <-time.After(10 * time.Second):
				t.Fatalf("received %d of %d events", len(ids), n)
			}
		}
		return ids
	}
	if ids := receive(len(want)); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("caught up with\n%v\nwant\n%v", ids, want)
	}
	srv.DropSubscriptionsAfter(0)
	// The last resubscription caught up and live: the drop below ends it.
	testwait.For(t, "a subscription live after catching up", func() bool { return srv.LiveSubscriptions() > 0 })
	srv.DropSubscriptions()
	live := ev("Live")
	if _, err := s.Append(ctx(t), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, live); err != nil {
		t.Fatal(err)
	}
	if ids := receive(1); ids[0] != live.ID {
		t.Fatalf("live event %s, want %s", ids[0], live.ID)
	}
	// Nothing delivered twice or extra: the next event delivered is the next one appended.
	next := ev("Next")
	if _, err := s.Append(ctx(t), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, next); err != nil {
		t.Fatal(err)
	}
	if ids := receive(1); ids[0] != next.ID {
		t.Fatalf("delivered twice or extra: %s, want %s", ids[0], next.ID)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe returned %v", err)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// The client looks for its node without looking at the caller's context; the adapter must
// still answer by the deadline.
func TestUnreachableServerErrsWithinDeadline(t *testing.T) {
	const deadline, slack = 300 * time.Millisecond, time.Second
	within := func(name string, f func(context.Context) error) {
		t.Helper()
		c, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		start := time.Now()
		err := f(c)
		if err == nil {
			t.Errorf("%s succeeded against no server", name)
		}
		if d := time.Since(start); d > deadline+slack {
			t.Errorf("%s took %s, deadline %s", name, d, deadline)
		}
	}
	within("Open", func(c context.Context) error {
		s, err := kurrentdb.Open(c, "esdb://"+closedPort(t)+"?tls=false", kurrentdb.Options{})
		if err == nil {
			_ = s.Close()
		}
		return err
	})

	conn, stop := standin.Start()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, ev("Opened")); err != nil {
		t.Fatal(err)
	}
	stop()
	within("Append", func(c context.Context) error {
		_, err := s.Append(c, stream, eventstore.Exact(0), ev("Lost"))
		return err
	})
	within("ReadStream", func(c context.Context) error { _, err := s.ReadStream(c, stream, 0); return err })
	within("ReadAll", func(c context.Context) error { _, err := s.ReadAll(c, 0, 10); return err })
	within("Head", func(c context.Context) error { _, err := s.Head(c); return err })
	within("Subscribe", func(c context.Context) error {
		return s.Subscribe(c, 0, func(eventstore.Envelope) error { return nil })
	})
}

// Once its node discovery fails, the esdb client refuses every later call; the store
// replaces it, so a server that comes back is used again.
func TestStoreReconnectsWhenStandinComesBack(t *testing.T) {
	srv := standin.New()
	conn, stop := srv.Start()
	s := open(t, conn)
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx(t), stream, eventstore.NoStream, ev("Opened")); err != nil {
		t.Fatal(err)
	}
	stop()
	next := ev("AfterOutage")
	// The outage lasts until the client has gone through its failed discovery (10 attempts,
	// 100 ms apart) and says so: an append refused with "connection closed", the state the
	// store must get over.
	testwait.For(t, `an append refused with "connection closed"`, func() bool {
		c, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		_, err := s.Append(c, stream, eventstore.Exact(0), next)
		cancel()
		if err == nil {
			t.Fatal("append succeeded with the server down")
		}
		var e *esdb.Error
		return errors.As(err, &e) && e.IsErrorCode(esdb.ErrorCodeConnectionClosed)
	})
	addr := strings.TrimSuffix(strings.TrimPrefix(conn, "esdb://"), "?tls=false")
	_, stop = srv.StartAt(addr)
	defer stop()
	var r eventstore.AppendResult
	testwait.Check(t, "an append once the server is back", func() (err error) {
		c, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		r, err = s.Append(c, stream, eventstore.Exact(0), next)
		return err
	})
	if r.Version != 1 {
		t.Fatalf("append after the outage: %+v", r)
	}
}
