package kurrentdb

import (
	"context"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// page is how many events one read asks the server for.
const page = 512

// ReadStream returns the stream's events from version from on, oldest first. Every event
// carries its commit's position, so a read goes on past from's page until the last commit
// it touched is whole.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Envelope, error) {
	if _, _, err := eventstore.ParseStream(stream); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	out := []eventstore.Envelope{}
	asm := commits{tail: true} // a read from inside a commit keeps that commit's rest
	start := from
	for {
		n := 0
		var decodeErr error
		err := s.read(ctx, s.opts.StreamPrefix+stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(start)}, page, func(ev *esdb.RecordedEvent) {
			n++
			start = ev.EventNumber + 1
			if decodeErr != nil {
				return
			}
			env, err := s.decode(ev)
			if err != nil {
				decodeErr = err
				return
			}
			done, err := asm.add(env)
			if err != nil {
				decodeErr = err
				return
			}
			out = append(out, done...)
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return nil, fmt.Errorf("read %s from %d: %w", stream, from, err)
		}
		if n < page {
			// A commit still open at the stream's end is held back, as on $all.
			return out, nil
		}
	}
}

// allFrom is where to read $all from to see what follows position after: its start, or
// the record at after, which is the last event of a commit the store answered (a read
// includes it, a subscription does not).
func allFrom(after uint64) esdb.AllPosition {
	if after == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: after, Prepare: after}
}

// ReadAll returns the store's events in whole commits after position after, until at
// least limit events are collected.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	limit = max(limit, 1)
	// seen moves with every event read, ours or not, so that each page makes progress even
	// through a long run of events that are not ours; the next page starts at it again.
	seen := after
	start := allFrom(after)
	out := []eventstore.Envelope{}
	asm := commits{}
	for {
		n, done := 0, false
		var decodeErr error
		err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, page, func(ev *esdb.RecordedEvent) bool {
			n++
			start = ev.Position
			if ev.Position.Commit <= seen && seen != 0 {
				return true
			}
			seen = ev.Position.Commit
			if !s.ours(ev) {
				return true
			}
			env, err := s.decode(ev)
			if err == nil {
				var whole []eventstore.Envelope
				if whole, err = asm.add(env); err == nil {
					out = append(out, whole...)
					done = len(whole) > 0 && len(out) >= limit
					return !done
				}
			}
			decodeErr = err
			return false
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return nil, fmt.Errorf("read $all after %d: %w", after, s.mapErr(err))
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

// Head is the position of the store's last whole commit, skipping what is not ours
// (KurrentDB writes system events of its own to $all).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var from esdb.AllPosition = esdb.End{}
	for {
		n, head := 0, uint64(0)
		var decodeErr error
		err := s.readAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, page, func(ev *esdb.RecordedEvent) bool {
			n++
			from = ev.Position // backwards reads exclude their starting position
			if !s.ours(ev) {
				return true
			}
			env, err := s.decode(ev)
			if err != nil {
				decodeErr = err
				return false
			}
			if env.LastInCommit() { // an append still being written is not the head yet
				head = ev.Position.Commit
				return false
			}
			return true
		})
		if err == nil {
			err = decodeErr
		}
		if err != nil {
			return 0, fmt.Errorf("head: %w", err)
		}
		if head != 0 || n < page {
			return head, nil
		}
	}
}
