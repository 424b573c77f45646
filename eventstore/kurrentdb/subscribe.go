package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// Subscribe follows $all from after (a commit position) with a catch-up subscription and
// calls fn for each of the store's events. When the server drops the subscription it
// subscribes again from the last event handed to fn (not the last commit: a drop can fall
// in the middle of one), so every event reaches fn once, in order.
func (s *Store) Subscribe(ctx context.Context, after uint64, fn func(eventstore.Envelope) error) error {
	last := afterCommit(after)
	wait := s.opts.MinBackoff
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
			wait = s.opts.MinBackoff
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, s.opts.MaxBackoff)
	}
}

// fatal carries an error that resubscribing cannot cure (fn's own, or an event we cannot
// decode) out of subscribeOnce untouched.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }

// subscribeOnce runs one subscription until it drops; it reports whether any event went
// past *last, which it keeps up to date.
func (s *Store) subscribeOnce(ctx context.Context, last *pos, fn func(eventstore.Envelope) error) (bool, error) {
	c, err := s.conn()
	if err != nil {
		return false, err
	}
	opts := esdb.SubscribeToAllOptions{
		From: last.from(), // the client's default is the end of $all, not its start
		// The server skips system events; streams not named <category>-<uuid> are left
		// to ours(), since the server's regex dialect is not Go's.
		Filter: esdb.ExcludeSystemEventsFilter(),
	}
	sub, err := call(ctx, c, func(c *esdb.Client) (*esdb.Subscription, error) {
		return c.SubscribeToAll(ctx, opts)
	}, func(sub *esdb.Subscription) { _ = sub.Close() })
	// Not held while following: the subscription must end when the store closes, and its
	// Recv does not go through the client.
	c.release()
	if err != nil {
		s.recover(c, err)
		return false, fmt.Errorf("subscribe to $all: %w", err)
	}
	defer sub.Close()
	progressed := false
	for {
		e := sub.Recv()
		switch {
		case e.SubscriptionDropped != nil:
			return progressed, fmt.Errorf("subscription to $all dropped: %w", e.SubscriptionDropped.Error)
		case e.EventAppeared != nil:
			ev := e.EventAppeared.Event
			p := eventPos(ev)
			// Subscriptions from a position start after it, but from (c, c) that is after
			// the first event of commit c only; the rest of it is already delivered.
			if !p.after(*last) {
				continue
			}
			*last, progressed = p, true
			if !ours(ev) {
				continue
			}
			env, err := decode(ev)
			if err != nil {
				return progressed, fatal{err}
			}
			if err := fn(env); err != nil {
				return progressed, fatal{err}
			}
		}
		// Checkpoints and CaughtUp need nothing: we resume from the last event seen.
	}
}
