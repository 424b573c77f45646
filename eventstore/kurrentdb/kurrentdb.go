// Package kurrentdb is the eventstore.Store backend on KurrentDB (EventStoreDB), reached
// through the EventStore-Client-Go v4 gRPC client with an esdb:// connection string.
//
// Streams map one to one; the global Position is KurrentDB's commit position, which all
// events of one append share. Each event's KurrentDB metadata carries our Metadata plus the
// schema version and the event's place in its commit, so that readers of $all can tell
// commit boundaries apart.
package kurrentdb

import (
	"context"
	"errors"
	"fmt"
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
	// drops (defaults 50ms and 5s); the wait doubles on each failure in a row.
	MinBackoff, MaxBackoff time.Duration
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
