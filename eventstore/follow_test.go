package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/internal/backoff"
	"github.com/einvoice/spaceorders/internal/lazyfs"
	"github.com/einvoice/spaceorders/internal/retrying"
)

// fast keeps the tests' waits between subscriptions short.
var fast = backoff.Policy{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}

// appendCancelled appends a commit of n OrderCancelled events to a new order stream, the
// reason of each naming its place, and answers the commit's position.
func appendCancelled(t testing.TB, store eventstore.Store, n int) uint64 {
	t.Helper()
	codec := eventstore.DomainCodec()
	var data []eventstore.EventData
	for i := range n {
		d, err := codec.Encode(uuid.New(), domain.OrderCancelled{Reason: "r" + strconv.Itoa(i)}, eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, d)
	}
	res, err := store.Append(context.Background(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, data...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// seen is what a follower was handed: each commit's position and event count, and every
// event decoded, in order.
type seen struct {
	mu      sync.Mutex
	commits []eventstore.Commit
	changed chan struct{}
}

func newSeen() *seen { return &seen{changed: make(chan struct{})} }

func (s *seen) add(c eventstore.Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The follower must copy what outlives the call: the slice is reused.
	c.Events = append([]eventstore.Decoded(nil), c.Events...)
	s.commits = append(s.commits, c)
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until the commit at position has been handed on.
func (s *seen) waitFor(t testing.TB, position uint64) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		ch, n := s.changed, len(s.commits)
		done := n > 0 && s.commits[n-1].Position >= position
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("commit %d never reached the follower (%d commits so far)", position, n)
		}
	}
}

func (s *seen) positions() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, c := range s.commits {
		out = append(out, c.Position)
	}
	return out
}

// follow runs Follow in the background; stop ends it and answers its error.
func follow(t testing.TB, store eventstore.Store, after uint64, opts eventstore.FollowOptions,
	fn func(context.Context, eventstore.Commit) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eventstore.Follow(ctx, store, after, opts, fn) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// Stored commits first, then live ones, each whole, in order, its events decoded once.
func TestFollowDeliversStoredThenLiveCommitsDecoded(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	want := []uint64{appendCancelled(t, store, 3), appendCancelled(t, store, 1)}
	s := newSeen()
	stop := follow(t, store, 0, eventstore.FollowOptions{Backoff: fast}, func(_ context.Context, c eventstore.Commit) error {
		s.add(c)
		return nil
	})
	s.waitFor(t, want[1])
	want = append(want, appendCancelled(t, store, 2)) // live
	s.waitFor(t, want[2])
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow ended with %v, want the context's error", err)
	}
	if got := s.positions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commits %v, want %v", got, want)
	}
	for i, n := range []int{3, 1, 2} {
		c := s.commits[i]
		if len(c.Events) != n {
			t.Fatalf("commit %d has %d events, want %d", c.Position, len(c.Events), n)
		}
		for j, d := range c.Events {
			ev, ok := d.Event.(domain.OrderCancelled)
			if !ok || ev.Reason != "r"+strconv.Itoa(j) || d.Position != c.Position || d.Index != j {
				t.Fatalf("commit %d event %d: %+v (%T)", c.Position, j, d, d.Event)
			}
		}
	}
}

// Following after a position hands on only what follows it.
func TestFollowResumesAfterAPosition(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	var all []uint64
	for range 5 {
		all = append(all, appendCancelled(t, store, 2))
	}
	s := newSeen()
	follow(t, store, all[2], eventstore.FollowOptions{Backoff: fast}, func(_ context.Context, c eventstore.Commit) error {
		s.add(c)
		return nil
	})
	s.waitFor(t, all[4])
	if got := s.positions(); fmt.Sprint(got) != fmt.Sprint(all[3:]) {
		t.Fatalf("commits %v, want %v", got, all[3:])
	}
}

// A failing step is retried: the same commit comes again, after a pause, until it passes;
// nothing is skipped or handed on twice once accepted.
func TestFollowHandsTheCommitAgainAfterAnError(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	first, second := appendCancelled(t, store, 2), appendCancelled(t, store, 1)
	s := newSeen()
	var tries []time.Time
	follow(t, store, 0, eventstore.FollowOptions{Backoff: backoff.Policy{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}},
		func(_ context.Context, c eventstore.Commit) error {
			if c.Position == second && len(tries) < 3 {
				tries = append(tries, time.Now())
				return errors.New("the mail server is down")
			}
			s.add(c)
			return nil
		})
	s.waitFor(t, second)
	if got := s.positions(); fmt.Sprint(got) != fmt.Sprint([]uint64{first, second}) {
		t.Fatalf("commits %v, want %d then %d once each", got, first, second)
	}
	for i := 1; i < len(tries); i++ {
		if gap := tries[i].Sub(tries[i-1]); gap < 10*time.Millisecond {
			t.Fatalf("attempt %d came %s after the one before: no backoff", i+1, gap)
		}
	}
}

// A fatal error of the follower stops Follow at once, with that error; StopFollowing stops
// it without one.
func TestFollowStopsOnAFatalErrorOrWhenTold(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	appendCancelled(t, store, 1)
	appendCancelled(t, store, 1)
	damage := errors.New("the log is damaged")
	calls := 0
	err := eventstore.Follow(t.Context(), store, 0, eventstore.FollowOptions{Backoff: fast},
		func(context.Context, eventstore.Commit) error {
			calls++
			return eventstore.Fatal(damage)
		})
	if !errors.Is(err, damage) || calls != 1 {
		t.Fatalf("Follow answered %v after %d calls, want the fatal error after 1", err, calls)
	}
	calls = 0
	err = eventstore.Follow(t.Context(), store, 0, eventstore.FollowOptions{Backoff: fast},
		func(context.Context, eventstore.Commit) error {
			if calls++; calls == 2 {
				return eventstore.StopFollowing
			}
			return nil
		})
	if err != nil || calls != 2 {
		t.Fatalf("Follow answered %v after %d calls, want nil after 2", err, calls)
	}
}

// A payload that does not decode stops the follower there (retried, visibly behind); an
// event of a type this build does not know is skipped with a warning, and the log's own
// signed checkpoints are passed over in silence.
func TestFollowDecodingRules(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	logs := watchLogs()
	raw := func(typ, payload string) uint64 {
		res, err := store.Append(context.Background(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream,
			eventstore.EventData{ID: uuid.New(), Type: typ, SchemaVersion: 1, Payload: []byte(payload)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	checkpoint := raw(eventstore.LogCheckpointType, `{"position":3,"events":3,"digest":"00"}`)
	unknown := raw("SomethingNewRecorded", `{}`)
	bad := raw("OrderCancelled", `{"reason":7}`)
	s := newSeen()
	follow(t, store, 0, eventstore.FollowOptions{Backoff: fast, DecodeOptions: eventstore.DecodeOptions{Logger: logs.logger}},
		func(_ context.Context, c eventstore.Commit) error { s.add(c); return nil })
	s.waitFor(t, unknown)
	// The bad event is tried again and again, never handed on.
	retried := func(e observer.LoggedEntry) bool { return strings.Contains(e.Message, "subscribing again") }
	for logs.count(retried) < 3 {
		logs.waitFor(t, retried)
	}
	if got := s.positions(); fmt.Sprint(got) != fmt.Sprint([]uint64{checkpoint, unknown}) {
		t.Fatalf("commits %v, want %d and %d, not the undecodable %d", got, checkpoint, unknown, bad)
	}
	if s.commits[0].Events[0].Event != nil || s.commits[1].Events[0].Event != nil {
		t.Fatal("a checkpoint or an unknown type was decoded")
	}
	if n := logs.count(func(e observer.LoggedEntry) bool { return strings.Contains(e.Message, "unknown type") }); n != 1 {
		t.Fatalf("%d warnings about the unknown type (the checkpoint must not warn): %v", n, logs.logs.All())
	}
}

// ReadCommits reads up to the head it finds and returns; a later append is not waited for.
func TestReadCommitsStopsAtTheHead(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	a, b := appendCancelled(t, store, 2), appendCancelled(t, store, 3)
	var got []uint64
	last, err := eventstore.ReadCommits(t.Context(), store, 0, eventstore.DecodeOptions{}, func(c eventstore.Commit) error {
		got = append(got, c.Position)
		return nil
	})
	if err != nil || last != b || fmt.Sprint(got) != fmt.Sprint([]uint64{a, b}) {
		t.Fatalf("read %v up to %d (%v), want %d and %d", got, last, err, a, b)
	}
	if last, err := eventstore.ReadCommits(t.Context(), store, b, eventstore.DecodeOptions{}, nil); err != nil || last != b {
		t.Fatalf("read after the head: %d, %v", last, err)
	}
}

// The NATS server goes away and comes back (a restart on the same data and port): the
// follower's subscription fails while it is down (here the follower itself gave up on a
// commit just as the server left, so Follow must subscribe again against no server), and
// once it is back the follower carries on from its last whole commit, skipping nothing and
// repeating nothing it accepted.
func TestFollowSubscribesAgainAcrossAServerRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := jetstream.EmbeddedConfig{Dir: dir, Listen: "127.0.0.1:" + strconv.Itoa(freePort(t)), RelaxedSync: true}
	emb, err := jetstream.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	// The follower's own connection, over TCP, reconnecting: what a separate process has.
	nc, err := jetstream.Connect(t.Context(), emb.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	store, err := jetstream.Open(t.Context(), nc, jetstream.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	writer, err := jetstream.Open(t.Context(), emb.Conn, jetstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for range 3 {
		want = append(want, appendCancelled(t, writer, 1))
	}
	logs := watchLogs()
	s := newSeen()
	down, gaveUp := make(chan struct{}), make(chan struct{})
	third := want[2]
	var interrupted atomic.Bool
	follow(t, store, 0, eventstore.FollowOptions{Backoff: fast, DecodeOptions: eventstore.DecodeOptions{Logger: logs.logger}},
		func(_ context.Context, c eventstore.Commit) error {
			if c.Position == third && interrupted.CompareAndSwap(false, true) {
				<-down
				close(gaveUp)
				return errors.New("interrupted")
			}
			s.add(c)
			return nil
		})
	s.waitFor(t, want[1])
	writer.Close()
	if err := emb.Close(); err != nil {
		t.Fatal(err)
	}
	close(down)
	<-gaveUp
	// The next subscription fails: no server.
	logs.waitFor(t, func(e observer.LoggedEntry) bool {
		err, _ := e.ContextMap()["error"].(string)
		return strings.Contains(e.Message, "subscribing again") && !strings.Contains(err, "interrupted")
	})
	emb, err = jetstream.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	writer, err = jetstream.Open(t.Context(), emb.Conn, jetstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		want = append(want, appendCancelled(t, writer, 1))
	}
	s.waitFor(t, want[5])
	if got := s.positions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("commits %v, want %v", got, want)
	}
	for _, e := range logs.logs.FilterMessageSnippet("subscribing again").All() {
		t.Logf("subscribed again after: %v", e.ContextMap()["error"])
	}
}

// logWatch is a logger whose entries a test can wait on.
type logWatch struct {
	logger *zap.Logger
	logs   *observer.ObservedLogs
	mu     sync.Mutex
	added  chan struct{}
}

func watchLogs() *logWatch {
	w := &logWatch{added: make(chan struct{})}
	var core zapcore.Core
	core, w.logs = observer.New(zapcore.InfoLevel)
	w.logger = zap.New(core, zap.Hooks(func(zapcore.Entry) error {
		w.mu.Lock()
		close(w.added)
		w.added = make(chan struct{})
		w.mu.Unlock()
		return nil
	}))
	return w
}

// waitFor blocks until an entry matches.
func (w *logWatch) waitFor(t testing.TB, match func(observer.LoggedEntry) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		ch := w.added
		w.mu.Unlock()
		for _, e := range w.logs.All() {
			if match(e) {
				return
			}
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no such log entry among %v", w.logs.All())
		}
	}
}

// count is how many entries match.
func (w *logWatch) count(match func(observer.LoggedEntry) bool) int {
	n := 0
	for _, e := range w.logs.All() {
		if match(e) {
			n++
		}
	}
	return n
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Nothing a follower is handed can be taken back by a power loss: Follow hands on a commit
// only once the store has it on disk (the embedded store's group commit). The disk is
// internal/lazyfs, which loses whatever was not fsynced when the power is cut. With
// RelaxedSync (no fsync at all) the same run loses commits the follower acted on: the test
// has teeth.
func TestFollowNeverActsOnWhatAPowerLossTakesBack(t *testing.T) {
	if lost := followThroughPowerCut(t, jetstream.EmbeddedConfig{}); lost != 0 {
		t.Fatalf("%d commits handed to the follower were lost in the power cut", lost)
	}
}

func TestFollowWithoutFsyncActsOnWhatAPowerLossTakesBack(t *testing.T) {
	if lost := followThroughPowerCut(t, jetstream.EmbeddedConfig{RelaxedSync: true}); lost == 0 {
		t.Fatal("without fsync no commit handed to the follower was lost: the disk model has no teeth")
	}
}

// followThroughPowerCut appends from several writers while a follower runs, cuts the power
// once the follower has had 100 commits, restarts, and counts the commits the follower was
// handed that the log no longer holds.
func followThroughPowerCut(t *testing.T, cfg jetstream.EmbeddedConfig) (lost int) {
	disk := lazyfs.ForTest(t, lazyfs.Options{Torn: true})
	cfg.Dir = filepath.Join(disk.Dir(), "data")
	emb, err := jetstream.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := jetstream.Open(t.Context(), emb.Conn, jetstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				ev := eventstore.EventData{ID: uuid.New(), Type: "Written", SchemaVersion: 1, Payload: []byte(`{}`)}
				if _, err := store.Append(ctx, eventstore.StreamName("order", uuid.New()), eventstore.NoStream, ev); err != nil {
					return
				}
			}
		})
	}
	handed := map[uint64]uuid.UUID{}
	enough := make(chan struct{})
	wg.Go(func() {
		_ = eventstore.Follow(ctx, store, 0, eventstore.FollowOptions{Backoff: fast,
			DecodeOptions: eventstore.DecodeOptions{Decode: func(string) bool { return false }}},
			func(_ context.Context, c eventstore.Commit) error {
				handed[c.Position] = c.Events[0].ID
				if len(handed) == 100 {
					close(enough)
				}
				return nil
			})
	})
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("the follower was not handed 100 commits")
	}
	disk.PowerCut()
	cancel()
	wg.Wait()
	store.Close()
	emb.Close()
	if err := disk.Restart(); err != nil {
		t.Fatal(err)
	}
	emb, err = jetstream.StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	store, err = jetstream.Open(t.Context(), emb.Conn, jetstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	kept := map[uint64]uuid.UUID{}
	if _, err := eventstore.ReadCommits(t.Context(), store, 0, eventstore.DecodeOptions{Decode: func(string) bool { return false }},
		func(c eventstore.Commit) error {
			kept[c.Position] = c.Events[0].ID
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	for pos, id := range handed {
		if kept[pos] != id {
			lost++
		}
	}
	t.Logf("handed %d commits to the follower, %d in the log after the power cut, %d lost", len(handed), len(kept), lost)
	return lost
}

// reports counts what Follow tells the supervisor through its context.
type reports struct{ failed, recovered atomic.Int32 }

func (r *reports) Failed(error) { r.failed.Add(1) }
func (r *reports) Recovered()   { r.recovered.Add(1) }

// Follow's own retries are reported to whoever runs it (the supervisor, for /readyz and
// metrics): one failure and one recovery for each subscription again.
func TestFollowReportsItsRetries(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	pos := appendCancelled(t, store, 1)
	var r reports
	tries := 0
	err := eventstore.Follow(retrying.With(t.Context(), &r), store, 0, eventstore.FollowOptions{Backoff: fast},
		func(_ context.Context, c eventstore.Commit) error {
			if tries++; tries <= 2 {
				return errors.New("the mail server is down")
			}
			if c.Position == pos {
				return eventstore.StopFollowing
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if r.failed.Load() != 2 || r.recovered.Load() != 2 {
		t.Fatalf("reported %d failures and %d recoveries, want 2 and 2", r.failed.Load(), r.recovered.Load())
	}
}
