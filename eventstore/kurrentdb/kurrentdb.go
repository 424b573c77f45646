// Package kurrentdb is the eventstore.Store backend on KurrentDB (EventStoreDB), reached
// through the EventStore-Client-Go v4 gRPC client with an esdb:// connection string.
//
// Streams map one to one (behind an optional prefix). KurrentDB gives every event its own
// $all position (commit = prepare = the record's log offset, for servers from 20.6 on) and
// answers an append with its last event's; the store's rule is one position per commit, so
// every event carries the position of its commit's last event, and readers of $all and of
// streams hold a commit back until that event is read. Each event's KurrentDB metadata
// carries our Metadata plus the schema version and the event's place in its commit (Index,
// Count), which is how commit boundaries are told apart.
//
// Positions here are log offsets, not dense: ModelStatus.Lag and the like are distances in
// bytes of log, and only a position the store answered can be passed back (the server
// refuses one that is not a record's start: ErrInvalidPosition).
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("kurrentdb: store closed")

// Options tune a Store; the zero value is ready to use.
type Options struct {
	// ClientLog receives the esdb client's own log lines. Nil discards them: the client's
	// default prints to the standard logger, even for a subscription that we resume anyway.
	ClientLog esdb.LoggingFunc
	// MinBackoff and MaxBackoff bound the wait before resubscribing after a subscription
	// drops (defaults 50ms and 5s); the wait doubles (jittered) on each failure in a row.
	MinBackoff, MaxBackoff time.Duration
	// StreamPrefix is put before every stream name in the database (for example
	// "spaceorders."), so that the product's streams are told apart from other
	// applications' in the same database: only streams with it are read from $all. Empty:
	// every stream named <category>-<uuid> is taken as the product's. It must not start
	// with "$" (the server's own streams) nor hold spaces or control characters.
	StreamPrefix string
	// MaxAppendSize is the server's MaxAppendSize (KURRENTDB_MAX_APPEND_SIZE): an append
	// larger, as the server counts it, is refused with eventstore.ErrInvalidAppend before
	// it is sent. Default DefaultMaxAppendSize, the server's default.
	MaxAppendSize int
}

// DefaultMaxAppendSize is KurrentDB's default MaxAppendSize, 1 MiB: with it one event of
// eventstore.MaxPayload does not fit, so docker-compose.yml raises the server's to 8 MiB.
const DefaultMaxAppendSize = 1 << 20

// ValidPrefix checks a StreamPrefix.
func ValidPrefix(p string) error {
	if strings.HasPrefix(p, "$") || len(p) > 64 || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("kurrentdb: stream prefix %q: at most 64 characters, no spaces or control characters, not starting with $", p)
	}
	return nil
}

// Store is an eventstore.Store on KurrentDB. It is safe for concurrent use.
type Store struct {
	cfg  esdb.Configuration
	opts Options

	mu     sync.Mutex
	client *client
	closed bool
}

var _ eventstore.Store = (*Store)(nil)

// client counts the calls in flight on one esdb.Client, so that it is closed only once
// none is left: the esdb client closes its internal channel while a concurrent call may
// still send on it, which panics the process.
type client struct {
	*esdb.Client
	mu      sync.Mutex
	users   int
	retired bool
}

func (c *client) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users++
}

func (c *client) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users--
	if c.retired && c.users == 0 {
		_ = c.Client.Close()
	}
}

// retire closes c once its last call is done.
func (c *client) retire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retired = true
	if c.users == 0 {
		_ = c.Client.Close()
	}
}

// Open connects to the KurrentDB node named by connString (esdb://host:port?tls=false, or
// with TLS and credentials as the client accepts them) and checks that it answers before
// ctx ends.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	if err := ValidPrefix(opts.StreamPrefix); err != nil {
		return nil, err
	}
	if opts.MaxAppendSize <= 0 {
		opts.MaxAppendSize = DefaultMaxAppendSize
	}
	cfg, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: connection string: %w", err)
	}
	cfg.Logger = opts.ClientLog
	if cfg.Logger == nil {
		cfg.Logger = esdb.NoopLogging()
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	s := &Store{cfg: *cfg, opts: opts}
	if s.client, err = s.newClient(); err != nil {
		return nil, err
	}
	// The client connects lazily; reading one event of $all makes a wrong address or a
	// server that is down fail here rather than at the first command.
	err = s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1, func(*esdb.RecordedEvent) bool { return false })
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("kurrentdb: connect %s: %w", cfg.Address, err)
	}
	return s, nil
}

func (s *Store) newClient() (*client, error) {
	cfg := s.cfg // the esdb client keeps the pointer it is given
	c, err := esdb.NewClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: %w", err)
	}
	return &client{Client: c}, nil
}

// conn returns the current client, held: the caller releases it when done.
func (s *Store) conn() (*client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	s.client.hold()
	return s.client, nil
}

// recover replaces c when err says its connection is closed while the store is not: the
// esdb client gives up for good once node discovery fails (its connection loop exits), so
// a server that was down for a second would otherwise leave the store broken forever.
func (s *Store) recover(c *client, err error) {
	var e *esdb.Error
	if !errors.As(err, &e) || !e.IsErrorCode(esdb.ErrorCodeConnectionClosed) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.client != c {
		return
	}
	if fresh, err := s.newClient(); err == nil {
		c.retire()
		s.client = fresh
	}
}

// Close releases the connection once the calls in flight are done; open subscriptions
// end with an error.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.client.retire()
	}
	return nil
}

// call runs f and returns when f does or when ctx ends, whichever is first. The esdb client
// finds its node (and re-finds it after a failure) inside every call without looking at
// the context, for up to MaxDiscoverAttempts × GossipTimeout; call keeps a caller's deadline
// a deadline. A result that arrives too late is handed to late, and c stays held until then.
func call[T any](ctx context.Context, c *client, f func(*esdb.Client) (T, error), late func(T)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(c.Client)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		c.hold()
		go func() {
			if r := <-done; r.err == nil && late != nil {
				late(r.v)
			}
			c.release()
		}()
		var zero T
		return zero, ctx.Err()
	}
}
