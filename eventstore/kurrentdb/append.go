package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// appendAttempts bounds the tries of one Append that the server left unanswered (the
// client's deadline passed) or that found the server unavailable.
const appendAttempts = 4

// Append writes events as one KurrentDB append, checked by the server against expected.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Expected, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	data, err := encode(events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	total := 0
	for _, d := range data {
		total += size(d)
	}
	if total > s.opts.MaxAppendSize {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %d events of about %d bytes, over the server's append size of %d",
			eventstore.ErrInvalidAppend, len(events), total, s.opts.MaxAppendSize)
	}
	bo := backoff.New(backoff.Policy{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff})
	for attempt := 1; ; attempt++ {
		res, err := s.appendOnce(ctx, stream, expected, events, data)
		if err == nil || !retryable(err) || attempt == appendAttempts || ctx.Err() != nil {
			return res, err
		}
		// The append may have landed: the next try is recognised by its event ids (with Any
		// or StreamExists, by sameAsLastCommit), so trying again writes nothing twice.
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
}

// retryable tells whether an append may be tried again: the client's own deadline passed
// (the server drops a re-append it cannot yet check, IdempotentNotReady, without an
// answer) or the node was unavailable.
func retryable(err error) bool {
	var e *esdb.Error
	return errors.As(err, &e) && (e.IsErrorCode(esdb.ErrorCodeDeadlineExceeded) || e.IsErrorCode(esdb.ErrorUnavailable))
}

func (s *Store) appendOnce(ctx context.Context, stream string, expected eventstore.Expected, events []eventstore.EventData, data []esdb.EventData) (eventstore.AppendResult, error) {
	if expected.IsAny() || expected.IsStreamExists() {
		// With an exact revision (or no stream) the server itself recognises a retry by
		// its event ids; without one it only may, from a bounded cache. Look first.
		if res, ok, err := s.sameAsLastCommit(ctx, stream, events); err != nil || ok {
			return res, err
		}
	}
	c, err := s.conn()
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	opts := esdb.AppendToStreamOptions{ExpectedRevision: revision(expected)}
	wr, err := call(ctx, c, func(c *esdb.Client) (*esdb.WriteResult, error) {
		return c.AppendToStream(ctx, s.opts.StreamPrefix+stream, opts, data...)
	}, nil)
	c.release()
	if err == nil {
		res := eventstore.AppendResult{Version: wr.NextExpectedVersion, Position: wr.CommitPosition}
		if res.Position == 0 {
			// An idempotent re-append whose original the server could not read back is
			// answered without a position (NoPosition, which the client turns into 0);
			// the stream has the answer: the position of the commit's last event.
			if res.Position, err = s.positionOf(ctx, stream, res.Version); err != nil {
				return eventstore.AppendResult{}, fmt.Errorf("append %s: answered without a position: %w", stream, err)
			}
		}
		return res, nil
	}
	s.recover(c, err)
	var e *esdb.Error
	if !errors.As(err, &e) || !e.IsErrorCode(esdb.ErrorCodeWrongExpectedVersion) {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, s.mapErr(err))
	}
	// The server's answer names the actual revision only inside a message string; the
	// stream itself says it, and also whether this is a retry of a write that already
	// landed (its latest commit holds exactly these ids), which is no conflict at all.
	last, err := s.lastEvents(ctx, stream, len(events))
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: after wrong expected version: %w", stream, err)
	}
	if res, ok := s.sameCommit(last, events); ok {
		return res, nil
	}
	w := &eventstore.WrongVersionError{Stream: stream, Expected: expected}
	if len(last) > 0 {
		w.Actual, w.Exists = last[len(last)-1].EventNumber, true
	}
	return eventstore.AppendResult{}, w
}

// mapErr turns the server's refusals into the store's typed errors, keeping the
// client's error beside them.
func (s *Store) mapErr(err error) error {
	var e *esdb.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.IsErrorCode(esdb.ErrorCodeStreamDeleted):
		return fmt.Errorf("%w: %w", eventstore.ErrStreamDeleted, err)
	case status.Code(e.Unwrap()) == codes.InvalidArgument:
		msg := status.Convert(e.Unwrap()).Message()
		switch {
		case strings.Contains(msg, "Maximum Append"), strings.Contains(msg, "Append Event Size"):
			return fmt.Errorf("%w: %w", eventstore.ErrInvalidAppend, err)
		case strings.Contains(strings.ToLower(msg), "position"):
			return fmt.Errorf("%w: %w", eventstore.ErrInvalidPosition, err)
		}
	}
	return err
}

func revision(e eventstore.Expected) esdb.ExpectedRevision {
	switch {
	case e.IsNoStream():
		return esdb.NoStream{}
	case e.IsStreamExists():
		return esdb.StreamExists{}
	}
	if v, ok := e.Version(); ok {
		return esdb.Revision(v) // our versions are KurrentDB revisions: dense, from 0
	}
	return esdb.Any{}
}

func (s *Store) sameAsLastCommit(ctx context.Context, stream string, events []eventstore.EventData) (eventstore.AppendResult, bool, error) {
	last, err := s.lastEvents(ctx, stream, len(events))
	if err != nil {
		return eventstore.AppendResult{}, false, fmt.Errorf("append %s: %w", stream, err)
	}
	res, ok := s.sameCommit(last, events)
	return res, ok, nil
}

// sameCommit tells whether last (a stream's last events, oldest first) is exactly one
// commit holding events, and if so answers what its append answered: the version and
// position of its last event.
func (s *Store) sameCommit(last []*esdb.RecordedEvent, events []eventstore.EventData) (eventstore.AppendResult, bool) {
	if len(last) != len(events) {
		return eventstore.AppendResult{}, false
	}
	for i, ev := range last {
		if ev.EventID != events[i].ID {
			return eventstore.AppendResult{}, false
		}
	}
	if first, err := s.decode(last[0]); err != nil || first.Index != 0 || first.Count != len(events) {
		return eventstore.AppendResult{}, false
	}
	end := last[len(last)-1]
	return eventstore.AppendResult{Version: end.EventNumber, Position: end.Position.Commit}, true
}

// positionOf is the position of the stream's event at version v.
func (s *Store) positionOf(ctx context.Context, stream string, v uint64) (uint64, error) {
	var pos uint64
	err := s.read(ctx, s.opts.StreamPrefix+stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(v)}, 1, func(ev *esdb.RecordedEvent) {
		if ev.EventNumber == v {
			pos = ev.Position.Commit
		}
	})
	if err == nil && pos == 0 {
		err = fmt.Errorf("version %d is not in the stream", v)
	}
	return pos, err
}

// lastEvents returns up to n of the stream's last events, oldest first; none when the
// stream does not exist.
func (s *Store) lastEvents(ctx context.Context, stream string, n int) ([]*esdb.RecordedEvent, error) {
	var out []*esdb.RecordedEvent
	err := s.read(ctx, s.opts.StreamPrefix+stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, uint64(n), func(ev *esdb.RecordedEvent) {
		out = append(out, ev)
	})
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil, nil
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// read runs one ReadStream of the server's stream name and hands each event to fn. A
// missing stream is eventstore.ErrStreamNotFound (the client reports it on the first Recv,
// not on the call), a deleted one eventstore.ErrStreamDeleted.
func (s *Store) read(ctx context.Context, name string, opts esdb.ReadStreamOptions, count uint64, fn func(*esdb.RecordedEvent)) error {
	err := s.drain(ctx, func(c *esdb.Client) (*esdb.ReadStream, error) {
		return c.ReadStream(ctx, name, opts, count)
	}, func(ev *esdb.RecordedEvent) bool { fn(ev); return true })
	var e *esdb.Error
	if errors.As(err, &e) && e.IsErrorCode(esdb.ErrorCodeResourceNotFound) {
		return eventstore.ErrStreamNotFound
	}
	return s.mapErr(err)
}

// drain opens a read with open and hands each event to fn until the end or until fn
// returns false; ReadStream and ReadAll share it. Every receive is under ctx: the client's
// Recv reports an Unavailable error through its connection loop, and blocks while that
// loop is busy (or for good once it has given up), so the receiving happens on a goroutine
// of its own, which keeps the client held until it is done, and the caller leaves at ctx's
// end.
func (s *Store) drain(ctx context.Context, open func(*esdb.Client) (*esdb.ReadStream, error), fn func(*esdb.RecordedEvent) bool) error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	rs, err := call(ctx, c, open, (*esdb.ReadStream).Close)
	if err != nil {
		c.release()
		s.recover(c, err)
		return err
	}
	type received struct {
		ev  *esdb.ResolvedEvent
		err error
	}
	next := make(chan received)
	stop := make(chan struct{})
	go func() {
		defer c.release()
		for {
			ev, err := rs.Recv()
			select {
			case next <- received{ev, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(stop)
	defer rs.Close() // cancels the call: a Recv waiting for the server returns
	for {
		select {
		case r := <-next:
			if isEOF(r.err) {
				return nil
			}
			if r.err != nil {
				s.recover(c, r.err)
				return r.err
			}
			if !fn(r.ev.Event) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
