package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// hdrNumPending is in the 204 status that ends a batched direct get.
const hdrNumPending = "Nats-Num-Pending"

// batchSize is how many messages one batched direct get asks for.
const batchSize = 256

type batchRequest struct {
	Seq     uint64 `json:"seq"`
	NextFor string `json:"next_by_subj,omitempty"`
	Batch   int    `json:"batch"`
}

// directBatch asks for up to req.Batch messages from req.Seq on and calls fn for each, in
// order, until fn answers false. The server ends a batch with status 204 carrying how many
// messages are left; found is false when not even one message matched.
func (s *Store) directBatch(ctx context.Context, req batchRequest, fn func(*nats.Msg) (bool, error)) (pending uint64, found bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, false, err
	}
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, false, fmt.Errorf("direct get: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(s.directGet, inbox, body); err != nil {
		return 0, false, fmt.Errorf("direct get: %w", err)
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return 0, found, fmt.Errorf("direct get: %w", err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			found = true
			more, err := fn(m)
			if err != nil || !more {
				return 0, found, err
			}
		case "204":
			pending, err := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
			if err != nil {
				return 0, found, fmt.Errorf("direct get: end of batch without pending count: %w", err)
			}
			return pending, found, nil
		case "404":
			return 0, found, nil
		default:
			return 0, found, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
	}
}

// ReadStream reads the stream's messages with batched direct gets on its subject: the
// server walks its per-subject index, so the cost follows the stream, not the log.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Envelope, error) {
	subject, err := s.subjectOf(stream)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// The last commit first, with a plain request (a batch needs a subscription of its
	// own): a stream that does not exist, or whose wanted events are all in its last commit
	// (a new aggregate, a read from the latest version), is answered from it alone.
	lastMsg, err := s.last(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if lastMsg == nil {
		return nil, fmt.Errorf("read %s: %w", stream, eventstore.ErrStreamNotFound)
	}
	if first, err := strconv.ParseUint(lastMsg.Header.Get(hdrFirstVersion), 10, 64); err == nil && first <= from {
		one, err := s.decodeDirect(lastMsg, nil)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if err := s.flush.wait(ctx, one[0].Position); err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		i := 0
		for i < len(one) && one[i].StreamVersion < from {
			i++
		}
		return one[i:], nil
	}
	lastSeq, err := strconv.ParseUint(lastMsg.Header.Get(nats.JSSequence), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("read %s: last commit without sequence: %w", stream, err)
	}
	bo := backoff.New(backoff.Policy{Min: time.Millisecond, Max: 100 * time.Millisecond})
	for {
		all, seq, err := s.readBatches(ctx, stream, subject, from)
		switch {
		case errors.Is(err, eventstore.ErrStreamNotFound):
			seq = 1 // the stream's last commit exists: the replica answering has none of it yet
		case err != nil:
			return nil, err
		}
		// On a replicated stream the batches may come from a follower that has not got
		// the last commit yet (it serves reads from 90 % caught up): read again, briefly.
		if seq-1 >= lastSeq {
			return all, nil
		}
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return nil, fmt.Errorf("read %s: the replica answering reads is behind commit %d: %w", stream, lastSeq, err)
		}
	}
}

// readBatches reads a stream's commits with batched direct gets, from its version from on;
// seq-1 is the last commit read.
func (s *Store) readBatches(ctx context.Context, stream, subject string, from uint64) (_ []eventstore.Envelope, seq uint64, _ error) {
	var (
		all     []eventstore.Envelope
		any     bool
		decodeE error
	)
	seq = 1
	for {
		pending, found, err := s.directBatch(ctx, batchRequest{Seq: seq, NextFor: subject, Batch: batchSize}, func(m *nats.Msg) (bool, error) {
			st, err := stateFromHeaders(m.Header)
			if err != nil {
				return false, err
			}
			seq = st.seq + 1
			if st.version < from {
				return true, nil // the whole commit is before from
			}
			all, decodeE = s.decodeDirect(m, all)
			return decodeE == nil, decodeE
		})
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", stream, err)
		}
		any = any || found
		if !found || pending == 0 {
			break
		}
	}
	if !any {
		return nil, 0, fmt.Errorf("read %s: %w", stream, eventstore.ErrStreamNotFound)
	}
	// Answer only what is on disk (seq-1 is the last commit read).
	if err := s.flush.wait(ctx, seq-1); err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", stream, err)
	}
	// A commit that starts before from and ends at or after it is cut at from.
	i := 0
	for i < len(all) && all[i].StreamVersion < from {
		i++
	}
	return all[i:], seq, nil
}

// ReadAll reads whole commit messages from after+1 on with batched direct gets.
// A limit below 1 reads one commit.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	limit = max(limit, 1)
	var out []eventstore.Envelope
	seq := after + 1
	for len(out) < limit {
		// Each message holds at least one event: never ask for more than are still wanted.
		pending, found, err := s.directBatch(ctx, batchRequest{Seq: seq, Batch: min(batchSize, limit-len(out))}, func(m *nats.Msg) (bool, error) {
			var err error
			n := len(out)
			if out, err = s.decodeDirect(m, out); err != nil {
				return false, err
			}
			seq = out[n].Position + 1
			return len(out) < limit, nil
		})
		if err != nil {
			return nil, fmt.Errorf("read all after %d: %w", after, err)
		}
		if !found || pending == 0 {
			break
		}
	}
	// Answer only what is on disk.
	if len(out) > 0 {
		if err := s.flush.wait(ctx, out[len(out)-1].Position); err != nil {
			return nil, fmt.Errorf("read all after %d: %w", after, err)
		}
	}
	return out, nil
}

// Subscribe follows the log with an ordered consumer from after+1: it replays what is
// stored, then delivers new commits as they arrive, recreating itself on any gap.
func (s *Store) Subscribe(ctx context.Context, after uint64, fn func(eventstore.Envelope) error) error {
	it, err := s.messagesAfter(ctx, after, jetstream.OrderedConsumerConfig{}, batchSize)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("subscribe after %d: %w", after, err)
	}
	defer it.Stop()
	last := after
	var buf []eventstore.Envelope
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("subscribe after %d: %w", last, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("subscribe after %d: %w", last, err)
		}
		if meta.Sequence.Stream <= last {
			continue // a consumer reset may replay what was delivered
		}
		stream, err := s.streamOf(m.Subject())
		if err != nil {
			return fmt.Errorf("subscribe: message %d: %w", meta.Sequence.Stream, err)
		}
		buf, err = decodeCommit(stream, meta.Sequence.Stream, meta.Timestamp.UTC(), m.Headers(), m.Data(), buf[:0])
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		// No follower acts on a commit before it is on disk: a power loss could take it
		// back after the follower sent an email or moved its checkpoint past it.
		if err := s.flush.wait(ctx, meta.Sequence.Stream); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("subscribe after %d: %w", last, err)
		}
		for _, e := range buf {
			if err := fn(e); err != nil {
				return err
			}
		}
		last = meta.Sequence.Stream
	}
}
