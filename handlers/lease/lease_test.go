package lease_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/lease"
)

// replica is one holder of leases on its own connection to the server, as a replica of
// orderd would be.
type replica struct {
	l      *lease.Leases
	cancel context.CancelFunc
	done   chan error
	close  func()
}

func start(t *testing.T, e *jetstream.Embedded, name string, ttl time.Duration, running *atomic.Int32, held *atomic.Value) *replica {
	t.Helper()
	nc, err := jetstream.Connect(context.Background(), e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := natsjs.New(nc)
	kv, err := lease.OpenBucket(context.Background(), js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{l: lease.New(kv, name, ttl, zap.NewNop(), nil), done: make(chan error, 1), close: nc.Close}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- r.l.Run(ctx, "relay", func(ctx context.Context) error {
			if n := running.Add(1); n > 1 {
				t.Errorf("%s runs the role while %d others do", name, n-1)
			}
			held.Store(name)
			<-ctx.Done()
			running.Add(-1)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); nc.Close() })
	return r
}

func waitHeld(t *testing.T, held *atomic.Value, name string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for held.Load() != name {
		if time.Since(start) > within {
			t.Fatalf("%s did not take the role within %s (held by %v)", name, within, held.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// One holder at a time; a holder that dies (its connection gone, nothing given back) is
// replaced within about the TTL; one that stops gives the role back at once.
func TestOneHolderAndFailover(t *testing.T) {
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// Long enough that a loaded machine's late renewal is not a fail-over, and that a role
	// given back (at once) is told apart from one that expired (after the TTL).
	const ttl = 2 * time.Second
	var running atomic.Int32
	var held atomic.Value
	held.Store("")
	a := start(t, e, "A", ttl, &running, &held)
	waitHeld(t, &held, "A", 5*time.Second)
	b := start(t, e, "B", ttl, &running, &held)
	c := start(t, e, "C", ttl, &running, &held)
	// While A renews, nobody else takes it: several TTLs.
	deadline := time.Now().Add(2 * ttl)
	for time.Now().Before(deadline) {
		if h := held.Load(); h != "A" {
			t.Fatalf("the role moved to %v while A held it", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range b.l.Status() {
		if s.Held || s.Holder != "A" {
			t.Fatalf("B's view of the role: %+v", s)
		}
	}

	// A dies: no renewal, no release. Another takes over within the TTL and its renewal.
	a.close()
	took := time.Duration(0)
	start := time.Now()
	for {
		if h := held.Load(); h == "B" || h == "C" {
			took = time.Since(start)
			break
		}
		if time.Since(start) > 5*ttl {
			t.Fatalf("nobody took the role within %s of A's death", 5*ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("fail-over after a death: %s (TTL %s)", took, ttl)
	if err := <-a.done; err == nil {
		t.Error("A's Run ended without an error on a closed connection")
	}

	// The new holder stops: it gives the role back, and the last one takes it at once.
	next, last := b, c
	if held.Load() == "C" {
		next, last = c, b
	}
	lastName := "C"
	if last == b {
		lastName = "B"
	}
	next.cancel()
	<-next.done
	if d := waitHeld(t, &held, lastName, 5*time.Second); d > ttl {
		t.Errorf("a role given back took %s to move (TTL %s)", d, ttl)
	}
}
