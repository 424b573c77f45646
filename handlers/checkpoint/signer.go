package checkpoint

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
)

// Defaults of Options.
const (
	DefaultEvery    = 10_000
	DefaultInterval = time.Minute
)

// Options tune a Signer; the zero value takes the defaults.
type Options struct {
	// Every signs once this many events (other than checkpoints) were added since the last.
	Every int
	// Interval signs at least this often while events are being added.
	Interval time.Duration
	Logger   *zap.Logger
	Clock    func() time.Time
}

// Signer folds the log into the running log digest and signs it.
type Signer struct {
	store   eventstore.Store
	key     ed25519.PrivateKey
	dataDir string
	opts    Options
	log     *zap.Logger
	stream  string

	mu      sync.Mutex
	dig     audit.Digester // every event folded so far
	whole   audit.Digester // dig at the last commit end: what can be signed
	dirty   int            // events other than checkpoints folded since the last signature
	version uint64         // the checkpoint stream's last version
	prev    string         // and its last event's hash
	exists  bool
}

// New returns a signer of store's log with key, keeping its State in dataDir.
func New(store eventstore.Store, key ed25519.PrivateKey, dataDir string, opts Options) *Signer {
	if opts.Every <= 0 {
		opts.Every = DefaultEvery
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	id := audit.KeyID(key.Public().(ed25519.PublicKey))
	return &Signer{store: store, key: key, dataDir: dataDir, opts: opts, log: opts.Logger,
		stream: StreamOf(id)}
}

// StreamOf is the stream of the checkpoints signed with the key keyID names: one per key,
// so that replicas sharing a key meet on one expected version.
func StreamOf(keyID string) string {
	return eventstore.StreamName(audit.CheckpointCategory,
		uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:spaceorders:logcheckpoint:"+keyID)))
}

// Run follows the log and signs its head every Options.Every events or Options.Interval,
// and once more when ctx ends, before it returns.
func (s *Signer) Run(ctx context.Context) error {
	// A shutdown during the resume still ends with a checkpoint: resume on its own clock.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	from, err := s.resume(rctx)
	cancel()
	if err != nil {
		return err
	}
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	ticks, stopTicks := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ticks.Done():
				return
			case <-tick.C:
				s.mu.Lock()
				if s.dirty > 0 {
					s.signLocked(ctx, "interval")
				}
				s.mu.Unlock()
			}
		}
	}()
	err = eventstore.Follow(ctx, s.store, from, eventstore.FollowOptions{
		// The digest covers the stored bytes: nothing to decode.
		DecodeOptions: eventstore.DecodeOptions{Decode: func(string) bool { return false }, Logger: s.log},
		Name:          "checkpoints",
	}, func(ctx context.Context, c eventstore.Commit) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range c.Events {
			s.fold(d.Envelope)
		}
		if s.dirty >= s.opts.Every {
			s.signLocked(ctx, "events")
		}
		return nil
	})
	stopTicks()
	wg.Wait()
	if ctx.Err() == nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	// Shutting down: fold what the subscription had not delivered yet and sign the head.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.final(fctx)
}

func (s *Signer) fold(env eventstore.Envelope) {
	s.dig.Add(env)
	if !audit.IsCheckpoint(env) {
		s.dirty++
	}
	if env.LastInCommit() {
		s.whole = s.dig
	}
}

func (s *Signer) final(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	head, err := s.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("checkpoints: final: %w", err)
	}
	after := s.whole.Digest().Position
	for after < head {
		page, err := s.store.ReadAll(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("checkpoints: final: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, env := range page {
			s.fold(env)
		}
		after = page[len(page)-1].Position
	}
	if s.dirty > 0 {
		if err := s.signLocked(ctx, "shutdown"); err != nil {
			return err
		}
	}
	return nil
}

// resume starts from the State the data folder kept, when the log still holds its
// checkpoint at the same position (the same log in the same store), else from the start.
func (s *Signer) resume(ctx context.Context) (from uint64, err error) {
	st, err := ReadState(s.dataDir)
	if err != nil {
		s.log.Warn("checkpoints: unreadable state, folding the log from the start", zap.Error(err))
		st = nil
	}
	if st != nil {
		ok, pos, err := found(ctx, s.store, st)
		if err != nil {
			return 0, fmt.Errorf("checkpoints: %w", err)
		}
		if ok && pos == st.WrittenAt {
			d := audit.Digest{Position: st.Checkpoint.Position, Events: st.Checkpoint.Events, Sum: st.Checkpoint.Digest}
			if s.dig, err = audit.ResumeDigester(d); err == nil {
				s.whole = s.dig
				from = d.Position
			}
			if st.Stream == s.stream {
				s.exists, s.version = true, st.Version // read the stream from there, not from 0
			}
		} else {
			s.log.Warn("checkpoints: this data folder's last checkpoint is not where it was written; folding the log from the start",
				zap.String("stream", st.Stream), zap.Uint64("version", st.Version), zap.Uint64("written_at", st.WrittenAt))
		}
	}
	if err := s.readTail(ctx); err != nil {
		return 0, err
	}
	return from, nil
}

// readTail learns the checkpoint stream's last version and hash, for the next append.
func (s *Signer) readTail(ctx context.Context) error {
	from := uint64(0)
	if s.exists {
		from = s.version
	}
	envs, err := s.store.ReadStream(ctx, s.stream, from)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		s.exists = false
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoints: read %s: %w", s.stream, err)
	}
	if n := len(envs); n > 0 {
		last := envs[n-1]
		s.exists, s.version, s.prev = true, last.StreamVersion, eventstore.HashEnvelope(last)
	}
	return nil
}

// signLocked signs the digest at the last commit end and appends it; s.mu is held.
func (s *Signer) signLocked(ctx context.Context, why string) error {
	d := s.whole.Digest()
	cp := audit.SignCheckpoint(s.key, d, s.opts.Clock())
	payload, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	id := uuid.New()
	for attempt := 0; ; attempt++ {
		expected, version := eventstore.NoStream, uint64(0)
		if s.exists {
			expected, version = eventstore.Exact(s.version), s.version+1
		}
		ev := eventstore.EventData{ID: id, Type: audit.CheckpointType, SchemaVersion: audit.CheckpointVersion, Payload: payload,
			Metadata: eventstore.Metadata{Actor: "orderd:checkpoint", PrevHash: s.prev, OccurredAt: cp.SignedAt}}
		if !s.exists {
			ev.Metadata.PrevHash = ""
		}
		res, err := s.store.Append(ctx, s.stream, expected, ev)
		if eventstore.IsWrongVersion(err) && attempt < 5 {
			// Another replica with the same key signed: append after its checkpoint.
			if err := s.readTail(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			s.log.Warn("checkpoints: signing the log head failed", zap.String("why", why), zap.Error(err))
			return fmt.Errorf("checkpoints: append: %w", err)
		}
		s.exists, s.version = true, res.Version
		s.prev = eventstore.Hash(s.stream, version, ev)
		s.dirty = 0
		st := State{Checkpoint: cp, Stream: s.stream, Version: version, EventID: id, WrittenAt: res.Position}
		if err := writeState(s.dataDir, st); err != nil {
			s.log.Warn("checkpoints: state not saved; the next start folds the log from the start", zap.Error(err))
		}
		s.log.Info("log head signed", zap.String("why", why), zap.Uint64("position", cp.Position),
			zap.Uint64("events", cp.Events), zap.String("digest", cp.Digest), zap.Uint64("written_at", res.Position))
		return nil
	}
}
