// Package jstest starts the real embedded JetStream store for other packages' tests: an
// in-process server in a temporary folder, closed when the test ends. No fake store.
package jstest

import (
	"context"
	"testing"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
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
