package kurrentdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// Subscribe follows $all from after with a catch-up subscription and calls fn for each of
// the store's events, a whole commit at a time: a commit's events are held back until its
// last one arrives, and all carry its position. When the server drops the subscription in
// the middle of a commit, the part already received is discarded and the subscription
// starts again after the last commit handed to fn, so every event reaches fn once, in order.
func (s *Store) Subscribe(ctx context.Context, after uint64, fn func(eventstore.Envelope) error) error {
	last := after
	bo := backoff.New(backoff.Policy{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff})
	for {
		progressed, err := s.subscribeOnce(ctx, &last, fn)
		var f fatal
		if errors.As(err, &f) {
			return f.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		if progressed {
			bo.Reset()
		}
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
}

// fatal carries an error that resubscribing cannot cure (fn's own, an event we cannot
// decode, a broken commit, a position the server refuses) out of subscribeOnce untouched.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }

// subscribeOnce runs one subscription until it drops; it reports whether *last, the place
// to resume after, moved. *last is always the position of a record: the last event of a
// commit handed to fn, or an event that is not ours met between commits.
func (s *Store) subscribeOnce(ctx context.Context, last *uint64, fn func(eventstore.Envelope) error) (bool, error) {
	sub, err := s.subscribeAfter(ctx, *last)
	if err != nil {
		return false, err
	}
	defer sub.Close()
	progressed := false
	asm := commits{}
	for {
		e := sub.Recv()
		switch {
		case e.SubscriptionDropped != nil:
			// A commit half received is dropped with the subscription: the next one starts
			// after the last whole commit.
			return progressed, fmt.Errorf("subscription to $all dropped: %w", e.SubscriptionDropped.Error)
		case e.EventAppeared != nil:
			ev := e.EventAppeared.Event
			if ev.Position.Commit <= *last && *last != 0 {
				continue // subscriptions start after their position; this guards a server that would not
			}
			if !s.ours(ev) {
				if !asm.pending() {
					*last, progressed = ev.Position.Commit, true
				}
				continue
			}
			env, err := s.decode(ev)
			if err != nil {
				return progressed, fatal{err}
			}
			whole, err := asm.add(env)
			if err != nil {
				return progressed, fatal{err}
			}
			for _, env := range whole {
				if err := fn(env); err != nil {
					return progressed, fatal{err}
				}
			}
			if len(whole) > 0 || !asm.pending() {
				// A commit handed on, or the skipped tail of one begun before after.
				*last, progressed = ev.Position.Commit, true
			}
		}
		// Checkpoints and CaughtUp need nothing: we resume from the last whole commit.
	}
}

// subscribeAfter opens a subscription to $all after the position last, to the product's
// streams only. A position the server does not know is fatal: no retry would find it.
func (s *Store) subscribeAfter(ctx context.Context, last uint64) (*esdb.Subscription, error) {
	c, err := s.conn()
	if err != nil {
		return nil, err
	}
	opts := esdb.SubscribeToAllOptions{
		From: allFrom(last), // the client's default is the end of $all, not its start
		// The server skips system events; streams not named <category>-<uuid> are left
		// to ours(), since the server's regex dialect is not Go's.
		Filter: esdb.ExcludeSystemEventsFilter(),
	}
	if s.opts.StreamPrefix != "" {
		opts.Filter = &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{s.opts.StreamPrefix}}
	}
	sub, err := call(ctx, c, func(c *esdb.Client) (*esdb.Subscription, error) {
		return c.SubscribeToAll(ctx, opts)
	}, func(sub *esdb.Subscription) { _ = sub.Close() })
	// Not held while following: the subscription must end when the store closes, and its
	// Recv does not go through the client.
	c.release()
	if err != nil {
		s.recover(c, err)
		if err := s.mapErr(err); errors.Is(err, eventstore.ErrInvalidPosition) {
			return nil, fatal{fmt.Errorf("subscribe to $all after %d: %w", last, err)}
		}
		return nil, fmt.Errorf("subscribe to $all: %w", err)
	}
	return sub, nil
}
