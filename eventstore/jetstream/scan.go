package jetstream

import (
	"context"
	"fmt"
	"strconv"
	"time"

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

// ScanCommits reads only the commit messages' headers (a headers-only pull consumer): the
// versions are in headers, so no payload crosses the connection or is decoded. It fetches
// without waiting and ends at the first empty batch, not at the stream's last sequence: on
// a damaged tail the server may keep a last sequence whose message is gone.
func (s *Store) ScanCommits(ctx context.Context, after uint64, fn func(eventstore.CommitHead) error) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("scan commits: %w", err)
	}
	head := info.State.LastSeq
	if after >= head || info.State.Msgs == 0 {
		return nil
	}
	cfg := jetstream.ConsumerConfig{HeadersOnly: true, AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute}
	if after > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = after + 1
	}
	setup, cancel := s.bound(ctx)
	cons, err := s.stream.CreateConsumer(setup, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("scan commits after %d: %w", after, err)
	}
	defer func() {
		dctx, cancel := s.bound(context.WithoutCancel(ctx))
		defer cancel()
		_ = s.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	for after < head {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(4096)
		if err != nil {
			return fmt.Errorf("scan commits after %d: %w", after, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("scan commits after %d: %w", after, err)
			}
			seq := meta.Sequence.Stream
			if seq > head {
				continue // appended since the scan began
			}
			stream, err := s.streamOf(m.Subject())
			if err != nil {
				return fmt.Errorf("scan: message %d: %w", seq, err)
			}
			h := m.Headers()
			first, err := strconv.ParseUint(h.Get(hdrFirstVersion), 10, 64)
			if err != nil {
				return fmt.Errorf("scan: message %d without %s header: %w", seq, hdrFirstVersion, err)
			}
			count, err := strconv.Atoi(h.Get(hdrCount))
			if err != nil {
				return fmt.Errorf("scan: message %d without %s header: %w", seq, hdrCount, err)
			}
			if err := fn(eventstore.CommitHead{Position: seq, Stream: stream, FirstVersion: first, Count: count}); err != nil {
				return err
			}
			after = seq
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("scan commits after %d: %w", after, err)
		}
		if got == 0 {
			return nil
		}
	}
	return nil
}
