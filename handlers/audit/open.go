package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/nats-io/nats.go"
)

// StoreConfig names an event store the way orderd is configured: a data folder with the
// embedded JetStream store in it (as orderd keeps it, under <data>/jetstream), or a URL of
// a NATS server or cluster (nats://, comma-separated) or of KurrentDB (esdb://, esdb+discover://).
type StoreConfig struct {
	DataDir string
	URL     string
	// RelaxedSync: an embedded store does not fsync every append (import prefills only).
	RelaxedSync bool
	// StreamPrefix is orderd's --store-prefix of a KurrentDB store.
	StreamPrefix string
	// NATSOptions are added to the connection of a nats:// store: its credentials.
	NATSOptions []nats.Option
}

// OpenStore opens the store; close releases it (and stops an embedded server). An embedded
// data folder must not be in use by a running orderd: reach that one by its NATS URL.
func OpenStore(ctx context.Context, c StoreConfig) (store eventstore.Store, close func() error, err error) {
	switch {
	case strings.HasPrefix(c.URL, "esdb://"), strings.HasPrefix(c.URL, "esdb+discover://"):
		s, err := kurrentdb.Open(ctx, c.URL, kurrentdb.Options{StreamPrefix: c.StreamPrefix})
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	case c.URL != "":
		nc, err := jetstream.Connect(ctx, c.URL, c.NATSOptions...)
		if err != nil {
			return nil, nil, err
		}
		s, err := jetstream.Open(ctx, nc, jetstream.Options{})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return s, func() error { err := s.Close(); nc.Close(); return err }, nil
	case c.DataDir != "":
		dir := filepath.Join(c.DataDir, "jetstream")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("data folder %s: %w", c.DataDir, err)
		}
		emb, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: c.RelaxedSync})
		if err != nil {
			return nil, nil, err
		}
		s, err := jetstream.Open(ctx, emb.Conn, jetstream.Options{})
		if err != nil {
			emb.Close()
			return nil, nil, err
		}
		return s, func() error { err := s.Close(); emb.Close(); return err }, nil
	}
	return nil, nil, fmt.Errorf("no store: give a data folder or a nats:// or esdb:// URL")
}

// DigestAt is the log digest after every commit with Position <= at (at 0: the head).
func DigestAt(ctx context.Context, store eventstore.Store, at uint64, progress Progress) (Digest, error) {
	var d Digester
	errStop := fmt.Errorf("stop")
	err := readAll(ctx, store, 0, progress, func(env eventstore.Envelope) error {
		if at > 0 && env.Position > at {
			return errStop
		}
		d.Add(env)
		return nil
	})
	if err != nil && err != errStop {
		return Digest{}, err
	}
	return d.Digest(), nil
}
