// Package open opens the event store a data folder or a URL names. It is the one way every
// binary does it: orderd, the separate mailer and orderctl take the same --data, --store and
// --store-prefix, and so reach the same log the same way.
package open

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
)

// The kinds of store a URL names.
const (
	Embedded = "embedded"  // no URL: JetStream embedded in this process, in <data>/jetstream
	NATS     = "nats"      // nats:// or tls:// URLs, comma-separated: a NATS server or cluster
	Kurrent  = "kurrentdb" // esdb:// or esdb+discover://
)

// Kind is the kind of store url names, or an error saying what a store URL looks like.
func Kind(url string) (string, error) {
	switch {
	case url == "":
		return Embedded, nil
	case hasScheme(url, "esdb", "esdb+discover"):
		return Kurrent, nil
	case natsURLs(url):
		return NATS, nil
	}
	return "", fmt.Errorf("%q: want empty (the embedded store), nats://host:4222 or esdb://host:2113?tls=false", url)
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(u, s+"://") && len(u) > len(s)+3 {
			return true
		}
	}
	return false
}

// natsURLs: one or more comma-separated nats:// or tls:// URLs.
func natsURLs(v string) bool {
	for _, u := range strings.Split(v, ",") {
		if !hasScheme(strings.TrimSpace(u), "nats", "tls") {
			return false
		}
	}
	return true
}

// Config names a store as the binaries' settings do.
type Config struct {
	// DataDir holds the embedded store, under <DataDir>/jetstream.
	DataDir string
	// URL of the store instead; empty for the embedded one.
	URL string
	// StreamPrefix of the product's stream names in KurrentDB (--store-prefix).
	StreamPrefix string
	// RelaxedSync: the embedded store does not fsync its appends (tests, prefills).
	RelaxedSync bool
	// Replicas of the streams a nats:// store creates.
	Replicas int
	// EmbeddedNATS starts the embedded server in DataDir even when the store is KurrentDB:
	// orderd's notifications and keys need a NATS server, and without one named it is its own.
	EmbeddedNATS bool
	// Server is the rest of the embedded server's configuration (its listener and users);
	// Dir, RelaxedSync and Logger are set from the fields above.
	Server jetstream.EmbeddedConfig
	// NATSOptions are added to the connection of a nats:// store (credentials, reconnects).
	NATSOptions []nats.Option
	// Logger. Default: no logging.
	Logger *zap.Logger
}

// Opened is an open store and what was started to reach it. The store is a field, not
// embedded: callers look for the optional interfaces of its concrete type (the audit's
// gap finder), which an embedding struct would hide.
type Opened struct {
	Store eventstore.Store
	// Kind is Embedded, NATS or Kurrent.
	Kind string
	// Embedded is the server started in the data folder, or nil.
	Embedded *jetstream.Embedded
	// Conn is the NATS connection a JetStream store uses (the embedded server's in-process
	// one, or the nats:// URL's), else the embedded server's if started; nil otherwise.
	Conn    *nats.Conn
	closers []func() error
}

// Close closes the store, then what was started for it, the last first.
func (s *Opened) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// ConnectTimeout bounds reaching a server (NATS, KurrentDB) when ctx has no deadline of its
// own. Creating the events stream is not bounded by it: a cluster still electing its leader
// is waited for within ctx, or jetstream.Ensure's own bound.
const ConnectTimeout = 15 * time.Second

// Open opens the store c names. An embedded data folder must not be in use by another
// process: a running orderd's store is reached by its NATS URL.
func Open(ctx context.Context, c Config) (*Opened, error) {
	kind, err := Kind(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	s := &Opened{Kind: kind}
	if err := s.open(ctx, c); err != nil {
		_ = s.Close() // what was started before the failure
		return nil, err
	}
	return s, nil
}

func (s *Opened) open(ctx context.Context, c Config) error {
	kind := s.Kind
	if kind == Embedded || c.EmbeddedNATS {
		if c.DataDir == "" {
			return errors.New("no store: give a data folder or a nats:// or esdb:// URL")
		}
		dir := filepath.Join(c.DataDir, "jetstream")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("data folder %s: %w", c.DataDir, err)
		}
		sc := c.Server
		sc.Dir, sc.RelaxedSync, sc.Logger = dir, c.RelaxedSync, c.Logger
		emb, err := jetstream.StartEmbedded(sc)
		if err != nil {
			return fmt.Errorf("embedded NATS in %s: %w", dir, err)
		}
		s.Embedded, s.Conn = emb, emb.Conn
		s.closers = append(s.closers, emb.Close)
	}
	switch kind {
	case Embedded:
		// The embedded server has already said whether it fsyncs every write; given its
		// faults, an append on a full disk is refused at once.
		return s.openJetStream(ctx, s.Embedded.Conn, jetstream.Options{Logger: c.Logger, SkipSyncReport: true, Faults: s.Embedded})
	case NATS:
		cctx, cancel := connecting(ctx)
		nc, err := jetstream.Connect(cctx, c.URL, c.NATSOptions...)
		cancel()
		if err != nil {
			return err
		}
		s.closers = append(s.closers, func() error { nc.Close(); return nil })
		s.Conn = nc
		return s.openJetStream(ctx, nc, jetstream.Options{Logger: c.Logger, Replicas: c.Replicas})
	case Kurrent:
		cctx, cancel := connecting(ctx)
		ks, err := kurrentdb.Open(cctx, c.URL, kurrentdb.Options{StreamPrefix: c.StreamPrefix})
		cancel()
		if err != nil {
			return err
		}
		s.Store = ks
		s.closers = append(s.closers, ks.Close)
	}
	return nil
}

// connecting is ctx, bounded by ConnectTimeout unless it has a deadline already.
func connecting(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, ConnectTimeout)
}

func (s *Opened) openJetStream(ctx context.Context, nc *nats.Conn, opts jetstream.Options) error {
	js, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		return err
	}
	s.Store = js
	s.closers = append(s.closers, js.Close)
	return nil
}
