package relay_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/handlers/relay"
)

type env struct {
	store eventstore.Store
	js    jetstream.JetStream
}

func start(t *testing.T) env {
	t.Helper()
	emb, store := jstest.Start(t, jstest.Relaxed)
	js, err := jetstream.New(emb.Conn)
	if err != nil {
		t.Fatal(err)
	}
	return env{store, js}
}

var (
	codec = eventstore.DomainCodec()
	cat   = domain.DefaultCatalogue()
)

func encode(t *testing.T, evs ...domain.Event) []eventstore.EventData {
	t.Helper()
	var out []eventstore.EventData
	for _, ev := range evs {
		d, err := codec.Encode(uuid.New(), ev, eventstore.Metadata{Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// appendOrder writes an order's life: a cart event (not published), a confirmation, and a
// commit of two published events (payment registered and paid).
func appendOrder(t *testing.T, s eventstore.Store) (ids []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	order := uuid.New()
	stream := eventstore.StreamName("order", order)
	commits := [][]eventstore.EventData{
		encode(t, domain.CheckoutStarted{}),
		encode(t, domain.OrderConfirmed{OrderID: order, PaymentMethod: "card"}),
		encode(t, domain.PaymentRegistered{AmountCents: 100, PaidCents: 100}, domain.OrderPaid{OrderID: order, PaidCents: 100}),
	}
	for i, c := range commits {
		if _, err := s.Append(ctx, stream, eventstore.Any, c...); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			for _, e := range c {
				ids = append(ids, e.ID)
			}
		}
	}
	return ids
}

// message is a published message: its body and the relay's checkpoint in its headers.
type message struct {
	notifications.Envelope
	Position uint64
	Index    int
	Header   nats.Header
}

// published reads the whole notifications stream in order.
func published(t *testing.T, js jetstream.JetStream) []message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, relay.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		env, err := notifications.Parse(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		msg := message{Envelope: env, Header: m.Header}
		if msg.Position, err = strconv.ParseUint(m.Header.Get(relay.HeaderPosition), 10, 64); err != nil {
			t.Fatal(err)
		}
		if msg.Index, err = strconv.Atoi(m.Header.Get(relay.HeaderIndex)); err != nil {
			t.Fatal(err)
		}
		if m.Header.Get("Nats-Msg-Id") != msg.EventID.String() {
			t.Fatalf("message %d: Nats-Msg-Id %q, event %s", seq, m.Header.Get("Nats-Msg-Id"), msg.EventID)
		}
		_, agg, err := eventstore.ParseStream(m.Header.Get(relay.HeaderStream))
		if err != nil {
			t.Fatal(err)
		}
		if want := notifications.Subject(relay.DefaultSubjectPrefix, msg.Type, agg.String()); m.Subject != want {
			t.Fatalf("message %d: subject %s, want %s", seq, m.Subject, want)
		}
		out = append(out, msg)
	}
	return out
}

// barrier appends one more order while the relay runs, and waits until the stream holds as
// many messages as want and the barrier's events. The relay publishes in log order, so a
// wrongful duplicate of an earlier event would land before the barrier's events, within the
// count, and show in the stream read next: the test cannot pass by looking too soon, as it
// could after a pause "long enough" for a duplicate to show.
func barrier(t *testing.T, e env, want []uuid.UUID) []uuid.UUID {
	t.Helper()
	want = append(want, appendOrder(t, e.store)...)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	return want
}

func runRelay(t *testing.T, e env) (stop func()) {
	return runRelayWith(t, e, relay.Options{})
}

// shortDedup is a de-duplication window so short that, with a pause longer than it between
// runs, the server cannot be what hides a relay that publishes an event twice.
var shortDedup = relay.Options{Duplicates: 100 * time.Millisecond}

func runRelayWith(t *testing.T, e env, opts relay.Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts.RetryDelay = 20 * time.Millisecond
	r := relay.New(e.store, e.js, opts)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

func assertExactly(t *testing.T, got []message, want []uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("published %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].EventID != want[i] {
			t.Fatalf("message %d is event %s (%s), want %s", i, got[i].EventID, got[i].Type, want[i])
		}
		if i > 0 && (got[i].Position < got[i-1].Position ||
			got[i].Position == got[i-1].Position && got[i].Index <= got[i-1].Index) {
			t.Fatalf("message %d out of log order", i)
		}
	}
}

func TestRelayPublishesTheLogOnceInOrder(t *testing.T) {
	e := start(t)
	var want []uuid.UUID
	for range 3 {
		want = append(want, appendOrder(t, e.store)...)
	}
	stop := runRelay(t, e)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	// Live: appended while the relay runs.
	want = append(want, appendOrder(t, e.store)...)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	stop()
	got := published(t, e.js)
	assertExactly(t, got, want)
	if got[0].Type != "OrderConfirmed" || got[2].Type != "OrderPaid" || got[1].Index != 0 || got[2].Index != 1 {
		t.Fatalf("unexpected first messages: %+v", got[:3])
	}
	p, err := got[2].Payload()
	if paid, ok := p.(notifications.OrderPaidV1); err != nil || !ok || paid.PaidCents != 100 {
		t.Fatalf("payload: %s (%v)", got[2].Data, err)
	}
}

// A relay stopped and restarted many times while the log grows publishes every event once.
func TestRelayRestartMidStreamSkipsNothingAndRepeatsNothing(t *testing.T) {
	e := start(t)
	var want []uuid.UUID
	for range 50 {
		want = append(want, appendOrder(t, e.store)...)
	}
	for round := range 6 {
		stop := runRelayWith(t, e, shortDedup)
		// Stop at some point mid-stream: after a few messages more than last time.
		jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(min(len(want), (round+1)*17)))
		for range 5 {
			want = append(want, appendOrder(t, e.store)...)
		}
		stop()
		// Not a wait on a condition: the server's de-duplication window must pass, so
		// that it cannot hide an event the next run publishes again.
		time.Sleep(2 * shortDedup.Duplicates)
	}
	stop := runRelayWith(t, e, shortDedup)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	want = barrier(t, e, want)
	stop()
	assertExactly(t, published(t, e.js), want)
}

// A relay that died after publishing the first event of a commit resumes with the second.
func TestRelayResumesWithinACommit(t *testing.T) { resumesWithinACommit(t, start(t)) }

// The same on a log whose positions are not dense, the KurrentDB adapter on its STAND-IN
// (which refuses positions that are not a record's start, as the server does): the
// relay never computes a position, it reads the rest of the commit from its stream.
func TestRelayResumesWithinACommitOnKurrentDBStandin(t *testing.T) {
	e := start(t)
	conn, stop := standin.Start()
	t.Cleanup(stop)
	s, err := kurrentdb.Open(context.Background(), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	e.store = s
	resumesWithinACommit(t, e)
}

func resumesWithinACommit(t *testing.T, e env) {
	ctx := context.Background()
	want := appendOrder(t, e.store) // confirmed, then registered+paid in one commit
	all, err := e.store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.EnsureStream(ctx, e.js, relay.Options{}); err != nil {
		t.Fatal(err)
	}
	// What a relay killed in the middle of the last commit left behind.
	for _, env := range all {
		if env.ID == want[2] {
			break
		}
		if env.Type == "CheckoutStarted" {
			continue
		}
		m, err := relay.Encode(relay.DefaultSubjectPrefix, cat, env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(env.ID.String())); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := relay.LastPublished(ctx, mustStream(t, e.js))
	if err != nil || cp.Index != 0 {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	stop := runRelay(t, e)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	want = barrier(t, e, want)
	stop()
	assertExactly(t, published(t, e.js), want)
}

// The server drops a re-publish of the same event id (a publish retried after a lost ack).
func TestRepublishIsDroppedByTheServer(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	want := appendOrder(t, e.store)
	stop := runRelay(t, e)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	stop()
	all, _ := e.store.ReadAll(ctx, 0, 100)
	for _, env := range all[1:] {
		m, _ := relay.Encode(relay.DefaultSubjectPrefix, cat, env)
		ack, err := e.js.PublishMsg(ctx, m, jetstream.WithMsgID(env.ID.String()))
		if err != nil || !ack.Duplicate {
			t.Fatalf("re-publish of %s: ack %+v, %v", env.Type, ack, err)
		}
	}
	assertExactly(t, published(t, e.js), want)
	info, _ := mustStream(t, e.js).Info(ctx)
	if info.Config.Duplicates != relay.DefaultDuplicates {
		t.Fatalf("duplicates window %s", info.Config.Duplicates)
	}
}

func mustStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), relay.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refuseOnce is the relay's JetStream with one fault: the first publish of one event goes
// out with an expectation the server refuses (as a full stream or a lost leader would), so
// that message is not stored while the ones published behind it are already on their way.
type refuseOnce struct {
	jetstream.JetStream
	mu      sync.Mutex
	eventID string
	done    bool
}

func (r *refuseOnce) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	return r.JetStream.PublishMsgAsync(m, append(opts, r.fault(m)...)...)
}

// fault returns the option that makes the server refuse the chosen event's first publish.
func (r *refuseOnce) fault(m *nats.Msg) []jetstream.PublishOpt {
	body, err := notifications.Parse(m.Data)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || body.EventID.String() != r.eventID {
		return nil
	}
	r.done = true
	return []jetstream.PublishOpt{jetstream.WithExpectStream("NOT-" + relay.DefaultStream)}
}

// The relay publishes without waiting for each acknowledgement; when the server refuses one
// message, nothing published behind it may land, or the stream's last message (the relay's
// checkpoint) would be past an event never published: that event would be lost for good.
func TestRelayRefusedMessageLeavesNoGap(t *testing.T) {
	e := start(t)
	var want []uuid.UUID
	for range 40 {
		want = append(want, appendOrder(t, e.store)...)
	}
	faulty := &refuseOnce{JetStream: e.js, eventID: want[7].String()}
	stop := runRelay(t, env{e.store, faulty})
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(want)))
	want = barrier(t, e, want)
	stop()
	faulty.mu.Lock()
	refused := faulty.done
	faulty.mu.Unlock()
	if !refused {
		t.Fatal("the fault was never injected")
	}
	assertExactly(t, published(t, e.js), want)
}

// The relay ensures its stream on every resume; an unchanged stream is not updated again
// (an update races the server's consumer creation), a changed one is.
func TestEnsureStreamUpdatesOnlyWhatChanged(t *testing.T) {
	emb, _ := jstest.Start(t, jstest.Relaxed)
	js, err := jetstream.New(emb.Conn)
	if err != nil {
		t.Fatal(err)
	}
	var updates atomic.Int32
	sub, err := emb.Conn.Subscribe("$JS.API.STREAM.UPDATE."+relay.DefaultStream, func(*nats.Msg) { updates.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	ensure := func(opts relay.Options) {
		t.Helper()
		if _, err := relay.EnsureStream(ctx, js, opts); err != nil {
			t.Fatal(err)
		}
		if err := emb.Conn.Flush(); err != nil { // the subscription has seen every request sent
			t.Fatal(err)
		}
	}
	ensure(relay.Options{})
	first := updates.Load()
	ensure(relay.Options{})
	ensure(relay.Options{})
	if n := updates.Load(); n != first {
		t.Fatalf("%d update requests for an unchanged stream", n-first)
	}
	ensure(relay.Options{MaxAge: time.Hour})
	if n := updates.Load(); n != first+1 {
		t.Fatalf("%d update requests for a changed stream, want 1", n-first)
	}
	s, err := js.Stream(ctx, relay.DefaultStream)
	if err != nil || s.CachedInfo().Config.MaxAge != time.Hour {
		t.Fatalf("stream after the change: %v", err)
	}
}
