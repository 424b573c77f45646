package lease_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/lease"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// replica is one holder of leases on its own connection to the server, as a replica of
// orderd would be.
type replica struct {
	l      *lease.Leases
	cancel context.CancelFunc
	done   chan error
	close  func()
}

// took hears the name of each replica that takes the role, when it does.
func start(t *testing.T, e *jetstream.Embedded, name string, ttl time.Duration, running *atomic.Int32, held *atomic.Value, took chan<- string) *replica {
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
			took <- name
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
	return testwait.CheckWithin(t, within, name+" taking the role", func() error {
		if h := held.Load(); h != name {
			return fmt.Errorf("held by %q", h)
		}
		return nil
	})
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
	took := make(chan string, 8) // one take each at most, and the last one's
	a := start(t, e, "A", ttl, &running, &held, took)
	waitHeld(t, &held, "A", 5*time.Second)
	<-took // A's own take, told right after held
	b := start(t, e, "B", ttl, &running, &held, took)
	c := start(t, e, "C", ttl, &running, &held, took)
	// While A renews, nobody else takes it. Time itself is the scenario here, not a wait on
	// a condition: only once the TTL has passed (twice) would a missing renewal show, and
	// any take meanwhile is heard on took at once.
	select {
	case who := <-took:
		t.Fatalf("the role moved to %s while A held it", who)
	case <-time.After(2 * ttl):
	}
	for _, s := range b.l.Status() {
		if s.Held || s.Holder != "A" {
			t.Fatalf("B's view of the role: %+v", s)
		}
	}

	// A dies: no renewal, no release. Another takes over within the TTL and its renewal.
	a.close()
	failover := testwait.Within(t, 5*ttl, "B or C taking the role after A's death", func() bool {
		h := held.Load()
		return h == "B" || h == "C"
	})
	t.Logf("fail-over after a death: %s (TTL %s)", failover, ttl)
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
