package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/storetest"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func startEmbedded(t testing.TB, dir string, relaxed bool) *jetstream.Embedded {
	t.Helper()
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: relaxed})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func open(t testing.TB, nc *nats.Conn, opts jetstream.Options) *jetstream.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The suite runs with SyncAlways, as in production: relaxed sync would hide nothing the
// suite checks, but the default is what must be right.
func TestConformanceEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dir := t.TempDir()
		e := startEmbedded(t, dir, false)
		s := open(t, e.Conn, jetstream.Options{})
		t.Cleanup(func() { s.Close(); e.Close() })
		return storetest.Harness{
			Store:    s,
			Features: storetest.Features{Restart: true},
			Restart: func(t *testing.T) eventstore.Store {
				s.Close()
				e.Close()
				e = startEmbedded(t, dir, false)
				s = open(t, e.Conn, jetstream.Options{})
				return s
			},
		}
	})
}

// TestConformanceExternal runs the suite on the server at NATS_URL, each subtest on its own
// uniquely named stream, deleted afterwards. Restart reopens the Store on a new connection.
func TestConformanceExternal(t *testing.T) {
	url := os.Getenv("NATS_URL")
	if url == "" {
		t.Skip("NATS_URL not set")
	}
	run := uuid.NewString()[:8]
	n := 0
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		n++
		opts := jetstream.Options{
			Stream:        fmt.Sprintf("TEST_%s_%d", run, n),
			SubjectPrefix: fmt.Sprintf("test_%s_%d", run, n),
		}
		connect := func(t *testing.T) *nats.Conn {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			nc, err := jetstream.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			return nc
		}
		nc := connect(t)
		s := open(t, nc, opts)
		t.Cleanup(func() {
			s.Close()
			deleteStream(t, nc, opts.Stream)
			nc.Close()
		})
		return storetest.Harness{
			Store:    s,
			Features: storetest.Features{Restart: true},
			Restart: func(t *testing.T) eventstore.Store {
				s.Close()
				old := nc
				nc = connect(t)
				old.Close()
				s = open(t, nc, opts)
				return s
			},
		}
	})
}

func deleteStream(t *testing.T, nc *nats.Conn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.DELETE."+name, nil); err != nil {
		t.Logf("delete stream %s: %v", name, err)
	}
}

// The embedded default is durable: the store fsyncs its appends itself (group commit),
// so the server must not fsync each message on its own.
func TestEmbeddedIsDurableByDefault(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), false)
	defer e.Close()
	if !e.Durable() {
		t.Fatal("embedded server is not durable by default")
	}
	// The server itself must not fsync every write: the store's group commit does it.
	if c := e.Server.JetStreamConfig(); c == nil || c.SyncAlways {
		t.Fatal("embedded server fsyncs each message itself: no group commit")
	}
	s := open(t, e.Conn, jetstream.Options{})
	defer s.Close()
	if _, err := s.Append(t.Context(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	if s.Fsyncs() == 0 {
		t.Fatal("an append was answered without an fsync")
	}
	if e.ClientURL() != "" {
		t.Fatalf("embedded server listens on %s without being asked", e.ClientURL())
	}
	relaxed := startEmbedded(t, t.TempDir(), true)
	defer relaxed.Close()
	if relaxed.Durable() {
		t.Fatal("RelaxedSync did not turn the fsync of appends off")
	}
	rs := open(t, relaxed.Conn, jetstream.Options{})
	defer rs.Close()
	if _, err := rs.Append(t.Context(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	if rs.Fsyncs() != 0 {
		t.Fatal("RelaxedSync still fsyncs appends")
	}
}

func TestEmbeddedListensForOtherProcesses(t *testing.T) {
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.ClientURL() == "" {
		t.Fatal("no client URL")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	nc, err := jetstream.Connect(ctx, e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A store opened over TCP and one opened in-process see the same log.
	tcp := open(t, nc, jetstream.Options{})
	local := open(t, e.Conn, jetstream.Options{})
	stream := eventstore.StreamName("order", uuid.New())
	ev := eventstore.EventData{ID: uuid.New(), Type: "Happened", SchemaVersion: 1, Payload: []byte(`{}`)}
	r, err := tcp.Append(ctx, stream, eventstore.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := local.ReadStream(ctx, stream, 0)
	if err != nil || len(got) != 1 || got[0].Position != r.Position {
		t.Fatalf("read over the other connection: %v %+v", err, got)
	}
}

// The single-server pitfall: a retry of an append whose answer was lost meets a 10071
// (the subject check runs before de-duplication). Store a sees the stream as empty, store b
// writes the commit, then a "retries" it: the answer must be b's result, not a conflict.
func TestRetryAfterLostAnswerIsANoOp(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), true)
	defer e.Close()
	a := open(t, e.Conn, jetstream.Options{})
	b := open(t, e.Conn, jetstream.Options{})
	ctx := t.Context()
	stream := eventstore.StreamName("order", uuid.New())
	other := eventstore.StreamName("order", uuid.New())
	// a caches "stream is empty".
	if _, err := a.Append(ctx, other, eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadStream(ctx, stream, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, stream, eventstore.StreamExists, ev()); !eventstore.IsWrongVersion(err) {
		t.Fatalf("append to a missing stream with StreamExists: %v", err)
	}
	commit := []eventstore.EventData{ev(), ev()}
	want, err := b.Append(ctx, stream, eventstore.NoStream, commit...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Append(ctx, stream, eventstore.NoStream, commit...)
	if err != nil || got != want {
		t.Fatalf("retry answered %+v, %v; want %+v", got, err, want)
	}
	// A different commit from a's stale view is a real conflict, with the actual version.
	_, err = a.Append(ctx, stream, eventstore.Exact(0), ev())
	var w *eventstore.WrongVersionError
	if !errors.As(err, &w) || w.Actual != 1 || !w.Exists {
		t.Fatalf("stale append: %v", err)
	}
}

func ev() eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "Happened", SchemaVersion: 1, Payload: []byte(`{"a":1}`)}
}

// An unreachable server must answer within the caller's deadline, never hang: the store
// talks over TCP to a server that then stops, so the client keeps trying to reconnect and
// buffers what it sends instead of failing at once.
func TestUnreachableServerAnswersWithinDeadline(t *testing.T) {
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	disconnected := make(chan struct{})
	var once sync.Once
	nc, err := jetstream.Connect(ctx, e.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { once.Do(func() { close(disconnected) }) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s := open(t, nc, jetstream.Options{})
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx, stream, eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	url := e.ClientURL()
	e.Close() // the server goes away under the store
	select {
	case <-disconnected:
	case <-time.After(testwait.Timeout):
		t.Fatal("the client never noticed the server had gone")
	}

	check := func(name string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := f(ctx)
		if err == nil {
			t.Errorf("%s succeeded on a stopped server", name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %s with a 300ms deadline", name, d)
		}
		t.Logf("%s: %v after %s", name, err, time.Since(start).Round(time.Millisecond))
	}
	check("append", func(ctx context.Context) error {
		_, err := s.Append(ctx, stream, eventstore.Any, ev())
		return err
	})
	check("append to an uncached stream", func(ctx context.Context) error {
		_, err := s.Append(ctx, eventstore.StreamName("order", uuid.New()), eventstore.Any, ev())
		return err
	})
	check("read stream", func(ctx context.Context) error { _, err := s.ReadStream(ctx, stream, 0); return err })
	check("read all", func(ctx context.Context) error { _, err := s.ReadAll(ctx, 0, 10); return err })
	check("head", func(ctx context.Context) error { _, err := s.Head(ctx); return err })
	check("subscribe", func(ctx context.Context) error {
		return s.Subscribe(ctx, 0, func(eventstore.Envelope) error { return nil })
	})
	check("open", func(ctx context.Context) error {
		_, err := jetstream.Open(ctx, nc, jetstream.Options{})
		return err
	})
	check("connect", func(ctx context.Context) error {
		nc, err := jetstream.Connect(ctx, url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
		if err == nil {
			nc.Close()
		}
		return err
	})
}

// Open says at start whether the server's fsync setting could be seen; an ordinary account
// cannot see it, and finding that out is bounded (it must not hold Open up). A relaxed
// embedded server, whose appends the store does not fsync itself, takes that path.
func TestOpenReportsSyncSetting(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), true)
	defer e.Close()
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := jetstream.Open(ctx, e.Conn, jetstream.Options{Logger: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("sync setting cannot be seen from this account").Len() != 1 {
		t.Fatalf("no line saying the sync setting cannot be seen: %v", logs.All())
	}
	// The durable default says what it does instead.
	d := startEmbedded(t, t.TempDir(), false)
	defer d.Close()
	core, logs = observer.New(zap.InfoLevel)
	if _, err := jetstream.Open(ctx, d.Conn, jetstream.Options{Logger: zap.New(core)}); err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("fsynced in groups").Len() != 1 {
		t.Fatalf("no line about group commit: %v", logs.All())
	}
}

// Two servers on one folder would corrupt it: the second is refused while the first runs.
func TestTheDataFolderHasOneServerAtATime(t *testing.T) {
	dir := t.TempDir()
	first, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if second, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: true}); !errors.Is(err, jetstream.ErrDirInUse) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("a second server on the same folder: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}
