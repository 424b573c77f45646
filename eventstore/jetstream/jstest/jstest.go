// Package jstest starts the real embedded JetStream store for other packages' tests: an
// in-process server in a temporary folder, closed when the test ends. No fake store.
package jstest

import (
	"context"
	"fmt"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// Start runs an embedded server (in t.TempDir() unless cfg.Dir is set; relaxed sync unless
// the caller wants every write fsynced) and opens the event store on it.
func Start(t testing.TB, cfg jetstream.EmbeddedConfig) (*jetstream.Embedded, *jetstream.Store) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	emb, err := jetstream.StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("start embedded JetStream: %v", err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	s, err := jetstream.Open(context.Background(), emb.Conn, jetstream.Options{})
	if err != nil {
		t.Fatalf("open the event store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return emb, s
}

// Relaxed is the usual test configuration: no fsync per write, nothing to wait for.
var Relaxed = jetstream.EmbeddedConfig{RelaxedSync: true}

// WaitMessages waits until the JetStream stream holds at least n messages (a relay's
// notifications, say), failing the test with how many it has after testwait's bound.
func WaitMessages(t testing.TB, js natsjs.JetStream, stream string, n uint64) {
	t.Helper()
	testwait.Check(t, fmt.Sprintf("%d messages in stream %s", n, stream), func() error {
		s, err := js.Stream(context.Background(), stream)
		if err != nil {
			return err
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs < n {
			return fmt.Errorf("%d so far", info.State.Msgs)
		}
		return nil
	})
}
