package jetstream

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
)

var (
	_ eventstore.CommitScanner   = (*Store)(nil)
	_ eventstore.DensePositioner = (*Store)(nil)
)

// DensePositions is true: each commit is one message, the stream denies deletes and
// purges, so every sequence from 1 to the last holds a commit, and a missing one is damage.
func (s *Store) DensePositions() bool { return true }

// ScanCommits reads only the commit messages' headers (a headers-only ordered consumer):
// the versions are in headers, so no payload crosses the connection or is decoded.
func (s *Store) ScanCommits(ctx context.Context, after uint64, fn func(eventstore.CommitHead) error) error {
	last, err := s.lastStored(ctx, after)
	if err != nil {
		return fmt.Errorf("scan commits: %w", err)
	}
	if after >= last {
		return nil
	}
	it, err := s.messagesAfter(ctx, after, jetstream.OrderedConsumerConfig{HeadersOnly: true}, 4096)
	if err != nil {
		return fmt.Errorf("scan commits after %d: %w", after, err)
	}
	defer it.Stop()
	for after < last {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("scan commits after %d: %w", after, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("scan commits after %d: %w", after, err)
		}
		seq := meta.Sequence.Stream
		if seq <= after {
			continue // a consumer reset may replay what was delivered
		}
		head, err := s.commitHead(seq, m)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if err := fn(head); err != nil {
			return err
		}
		after = seq
	}
	return nil
}

// lastStored is the sequence of the stream's last message really there, or after when
// none is past it. A damaged tail may keep its sequence as the stream's last while its
// message is gone (the server trusts its index): a scan must end at the last message there,
// or it would wait for the missing one forever. The caller sees the rest as a gap to the head.
func (s *Store) lastStored(ctx context.Context, after uint64) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return after, nil
	}
	last := info.State.LastSeq
	for ; last > after; last-- {
		m, err := s.direct(ctx, s.directGet, fmt.Appendf(nil, `{"seq":%d}`, last))
		if err != nil {
			return 0, fmt.Errorf("read message %d: %w", last, err)
		}
		if m != nil {
			break
		}
	}
	return last, nil
}

// commitHead reads the commit at seq from its message's subject and headers alone.
func (s *Store) commitHead(seq uint64, m jetstream.Msg) (eventstore.CommitHead, error) {
	stream, err := s.streamOf(m.Subject())
	if err != nil {
		return eventstore.CommitHead{}, fmt.Errorf("message %d: %w", seq, err)
	}
	h := m.Headers()
	first, err := strconv.ParseUint(h.Get(hdrFirstVersion), 10, 64)
	if err != nil {
		return eventstore.CommitHead{}, fmt.Errorf("message %d without %s header: %w", seq, hdrFirstVersion, err)
	}
	count, err := strconv.Atoi(h.Get(hdrCount))
	if err != nil {
		return eventstore.CommitHead{}, fmt.Errorf("message %d without %s header: %w", seq, hdrCount, err)
	}
	return eventstore.CommitHead{Position: seq, Stream: stream, FirstVersion: first, Count: count}, nil
}

// messagesAfter iterates over the stream's messages from after+1 with an ordered consumer
// of cfg (its delivery start set here), pulling up to batch at a time.
func (s *Store) messagesAfter(ctx context.Context, after uint64, cfg jetstream.OrderedConsumerConfig, batch int) (jetstream.MessagesContext, error) {
	cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	setup, cancel := s.bound(ctx)
	cons, err := s.stream.OrderedConsumer(setup, cfg)
	cancel()
	if err != nil {
		return nil, err
	}
	return cons.Messages(jetstream.PullMaxMessages(batch))
}

var _ eventstore.CommitCounter = (*Store)(nil)

// CommitCounts is the server's count of messages per subject. On recovery from a bad
// block the server keeps counting a message it dropped, which is what names its stream.
func (s *Store) CommitCounts(ctx context.Context) (map[string]uint64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.prefix+".>"))
	if err != nil {
		return nil, fmt.Errorf("jetstream: commit counts: %w", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subject, n := range info.State.Subjects {
		stream, err := s.streamOf(subject)
		if err != nil {
			return nil, err
		}
		out[stream] = n
	}
	return out, nil
}
