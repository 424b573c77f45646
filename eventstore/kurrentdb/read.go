package kurrentdb

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// page is how many events one read asks the server for.
const page = 512

// ReadStream returns the stream's events from version from on, oldest first.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Envelope, error) {
	if _, _, err := eventstore.ParseStream(stream); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []eventstore.Envelope
	for {
		n, next := 0, from
		var decodeErr error
		err := s.read(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}, page, func(ev *esdb.RecordedEvent) {
			n++
			next = ev.EventNumber + 1
			if decodeErr != nil {
				return
			}
			env, err := decode(ev)
			if err != nil {
				decodeErr = err
				return
			}
			out = append(out, env)
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
		}
		if n < page {
			return out, nil
		}
		from = next
	}
}

// pos orders events in $all: by commit position, then by prepare position within a commit.
type pos struct{ commit, prepare uint64 }

func (p pos) after(q pos) bool {
	return p.commit > q.commit || (p.commit == q.commit && p.prepare > q.prepare)
}

// afterCommit is the place just past every event of the commit at position c.
func afterCommit(c uint64) pos { return pos{c, ^uint64(0)} }

// from is where to start reading $all to see everything after p. A commit position is the
// position of its first event, so (c, c) always names a real record; filtering out what
// is not after p is left to the caller, since reads include their starting event and
// subscriptions do not.
func (p pos) from() esdb.AllPosition {
	if p.commit == 0 {
		return esdb.Start{}
	}
	if p.prepare == ^uint64(0) {
		return esdb.Position{Commit: p.commit, Prepare: p.commit}
	}
	return esdb.Position{Commit: p.commit, Prepare: p.prepare}
}

func eventPos(ev *esdb.RecordedEvent) pos { return pos{ev.Position.Commit, ev.Position.Prepare} }

// ReadAll returns the store's events in whole commits after commit position after, until
// at least limit events are collected.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	limit = max(limit, 1)
	last := afterCommit(after)
	// start moves with every event read, ours or not, so that each page makes progress
	// even through a long commit that only last filters out.
	start := last.from()
	out := []eventstore.Envelope{}
	for {
		n, done := 0, false
		var decodeErr error
		err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, page, func(ev *esdb.RecordedEvent) bool {
			n++
			start = ev.Position
			p := eventPos(ev)
			if !p.after(last) {
				return true
			}
			last = p
			if !ours(ev) {
				return true
			}
			env, err := decode(ev)
			if err != nil {
				decodeErr = err
				return false
			}
			out = append(out, env)
			if len(out) >= limit && env.LastInCommit() {
				done = true
				return false
			}
			return true
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return nil, fmt.Errorf("read $all after %d: %w", after, err)
		}
		if done || n < page {
			return out, nil
		}
	}
}

// readAll runs one ReadAll and hands each event to fn until fn returns false.
func (s *Store) readAll(ctx context.Context, opts esdb.ReadAllOptions, count uint64, fn func(*esdb.RecordedEvent) bool) error {
	return s.drain(ctx, func(c *esdb.Client) (*esdb.ReadStream, error) {
		return c.ReadAll(ctx, opts, count)
	}, fn)
}

// Head is the commit position of the store's last event, skipping what is not ours
// (KurrentDB writes system events of its own to $all).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var from esdb.AllPosition = esdb.End{}
	for {
		n, head := 0, uint64(0)
		err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, page, func(ev *esdb.RecordedEvent) bool {
			n++
			from = ev.Position // backwards reads exclude their starting position
			if ours(ev) {
				head = ev.Position.Commit
				return false
			}
			return true
		})
		if err != nil {
			return 0, fmt.Errorf("head: %w", err)
		}
		if head != 0 || n < page {
			return head, nil
		}
	}
}
