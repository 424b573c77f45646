package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// Append writes events as one KurrentDB append, checked by the server against expected.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Expected, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected.IsAny() || expected.IsStreamExists() {
		// With an exact revision (or no stream) the server itself recognises a retry by
		// its event ids; without one it only may, from a bounded cache. Look first.
		if res, ok, err := s.sameAsLastCommit(ctx, stream, events); err != nil || ok {
			return res, err
		}
	}
	data, err := encode(events)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	c, err := s.conn()
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	opts := esdb.AppendToStreamOptions{ExpectedRevision: revision(expected)}
	wr, err := call(ctx, c, func(c *esdb.Client) (*esdb.WriteResult, error) {
		return c.AppendToStream(ctx, stream, opts, data...)
	}, nil)
	c.release()
	if err == nil {
		return eventstore.AppendResult{Version: wr.NextExpectedVersion, Position: wr.CommitPosition}, nil
	}
	s.recover(c, err)
	var e *esdb.Error
	if !errors.As(err, &e) || !e.IsErrorCode(esdb.ErrorCodeWrongExpectedVersion) {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	// The server's answer names the actual revision only inside a message string; the
	// stream itself says it, and also whether this is a retry of a write that already
	// landed (its latest commit holds exactly these ids), which is no conflict at all.
	last, err := s.lastEvents(ctx, stream, len(events))
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: after wrong expected version: %w", stream, err)
	}
	if res, ok := sameCommit(last, events); ok {
		return res, nil
	}
	w := &eventstore.WrongVersionError{Stream: stream, Expected: expected}
	if len(last) > 0 {
		w.Actual, w.Exists = last[len(last)-1].EventNumber, true
	}
	return eventstore.AppendResult{}, w
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
	res, ok := sameCommit(last, events)
	return res, ok, nil
}

// sameCommit tells whether last (a stream's last events, oldest first) is exactly one
// commit holding events, and if so answers what its append answered.
func sameCommit(last []*esdb.RecordedEvent, events []eventstore.EventData) (eventstore.AppendResult, bool) {
	if len(last) != len(events) {
		return eventstore.AppendResult{}, false
	}
	for i, ev := range last {
		if ev.EventID != events[i].ID {
			return eventstore.AppendResult{}, false
		}
	}
	if first, err := decode(last[0]); err != nil || first.Index != 0 || first.Count != len(events) {
		return eventstore.AppendResult{}, false
	}
	end := last[len(last)-1]
	return eventstore.AppendResult{Version: end.EventNumber, Position: end.Position.Commit}, true
}

// lastEvents returns up to n of the stream's last events, oldest first; none when the
// stream does not exist.
func (s *Store) lastEvents(ctx context.Context, stream string, n int) ([]*esdb.RecordedEvent, error) {
	var out []*esdb.RecordedEvent
	err := s.read(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, uint64(n), func(ev *esdb.RecordedEvent) {
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

// read runs one ReadStream and hands each event to fn. A missing stream is
// eventstore.ErrStreamNotFound (the client reports it on the first Recv, not on the call).
func (s *Store) read(ctx context.Context, stream string, opts esdb.ReadStreamOptions, count uint64, fn func(*esdb.RecordedEvent)) error {
	err := s.drain(ctx, func(c *esdb.Client) (*esdb.ReadStream, error) {
		return c.ReadStream(ctx, stream, opts, count)
	}, func(ev *esdb.RecordedEvent) bool { fn(ev); return true })
	var e *esdb.Error
	if errors.As(err, &e) && e.IsErrorCode(esdb.ErrorCodeResourceNotFound) {
		return eventstore.ErrStreamNotFound
	}
	return err
}

// drain opens a read with open and hands each event to fn until the end or until fn
// returns false; ReadStream and ReadAll share it.
func (s *Store) drain(ctx context.Context, open func(*esdb.Client) (*esdb.ReadStream, error), fn func(*esdb.RecordedEvent) bool) error {
	c, err := s.conn()
	if err != nil {
		return err
	}
	defer c.release() // Recv reports some errors through the client, so hold it until done
	rs, err := call(ctx, c, open, (*esdb.ReadStream).Close)
	if err != nil {
		s.recover(c, err)
		return err
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if isEOF(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fn(ev.Event) {
			return nil
		}
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
