package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// Options configures a Runner.
type Options struct {
	// Dir holds one snapshot file per model. Empty: no snapshots, every start folds from zero.
	Dir string
	// Logger for skipped events, snapshots and resubscriptions. Default: none.
	Logger *zap.Logger
	// SnapshotEvery saves a model after that many events folded since its last save.
	// Default 100,000: a snapshot is the whole state (tens of MB with 100,000s of
	// subscriptions), while folding what a restart must replay takes a few seconds.
	SnapshotEvery int
	// SnapshotInterval saves a model with unsaved events after that long. Default 60 s.
	SnapshotInterval time.Duration
	// RetryDelay is the first pause before subscribing again after the store failed; it
	// doubles (jittered) with each failure in a row, up to 30 s. Default 200 ms.
	RetryDelay time.Duration

	// noFinalSave makes Run return without saving: the tests' stand-in for a crash.
	noFinalSave bool
}

// Runner feeds every read model from the log: it catches up from the models' checkpoints,
// then follows the log live, saving each model's snapshot as it goes. Queries run
// concurrently with the fold; each sees whole commits only.
type Runner struct {
	store eventstore.Store
	opts  Options
	log   *zap.Logger
	codec *eventstore.Codec

	slots  []*slot
	byName map[string]*slot

	// foldMu makes the fold of a commit and Rebuild's swap exclusive: while Rebuild holds
	// it, no slot's position moves.
	foldMu sync.Mutex

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever a position moves
}

// slot holds the live instance of one model.
type slot struct {
	name string

	mu    sync.RWMutex
	model Model
	pos   uint64
	// unsaved counts events folded since the last snapshot.
	unsaved  int
	lastSave time.Time

	saveMu sync.Mutex // one snapshot write at a time
}

// NewRunner loads each model from its snapshot in opts.Dir; a missing, unreadable or
// other-version snapshot means the model starts from zero.
func NewRunner(store eventstore.Store, opts Options) (*Runner, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = 100_000
	}
	if opts.SnapshotInterval <= 0 {
		opts.SnapshotInterval = time.Minute
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("projections: %w", err)
		}
	}
	r := &Runner{
		store: store, opts: opts, log: opts.Logger, codec: eventstore.DomainCodec(),
		byName: map[string]*slot{}, notify: make(chan struct{}),
	}
	for _, name := range ModelNames {
		m, _ := newModel(name)
		s := &slot{name: name, model: m, lastSave: time.Now()}
		if opts.Dir != "" {
			r.load(s)
		}
		r.slots = append(r.slots, s)
		r.byName[name] = s
	}
	return r, nil
}

func (r *Runner) load(s *slot) {
	snap, ok, err := readSnapshot(r.opts.Dir, s.name)
	switch {
	case err != nil:
		r.log.Error("projections: snapshot unreadable, rebuilding from zero", zap.String("model", s.name), zap.Error(err))
		return
	case !ok:
		return
	case snap.Model != s.name || snap.Version != s.model.Version():
		r.log.Info("projections: snapshot of another code version, rebuilding from zero",
			zap.String("model", s.name), zap.Int("snapshot_version", snap.Version), zap.Int("version", s.model.Version()))
		return
	}
	m, _ := newModel(s.name)
	if err := m.UnmarshalState(snap.State); err != nil {
		r.log.Error("projections: snapshot state unreadable, rebuilding from zero", zap.String("model", s.name), zap.Error(err))
		return
	}
	s.model, s.pos = m, snap.Position
	r.log.Info("projections: resumed from snapshot", zap.String("model", s.name), zap.Uint64("position", snap.Position))
}

// Run catches up from the lowest checkpoint, then follows the log live (eventstore.Follow,
// which subscribes again with backoff when the store fails), until ctx ends; then it saves
// every model's snapshot.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tick := time.NewTicker(r.opts.SnapshotInterval)
	defer tick.Stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				r.saveDue(false)
			}
		}
	})
	err := eventstore.Follow(ctx, r.store, r.minPosition(), eventstore.FollowOptions{
		DecodeOptions: r.decoding(), Name: "projections", Backoff: backoff.From(r.opts.RetryDelay),
	}, func(_ context.Context, c eventstore.Commit) error {
		r.fold(c)
		r.saveDue(true)
		return nil
	})
	if ctx.Err() != nil {
		err = nil
	}
	cancel()
	wg.Wait()
	if r.opts.noFinalSave {
		return err
	}
	return errors.Join(err, r.SaveAll())
}

// decoding is how the models read the log: every domain event, unknown types skipped, any
// other undecodable event a stop (eventstore.DecodeOptions' default).
func (r *Runner) decoding() eventstore.DecodeOptions {
	return eventstore.DecodeOptions{Codec: r.codec, Logger: r.log.Named("projections")}
}

// Positions is where each model has folded to, by name: what Status says without the
// digests, which hash a whole model under its lock. For probes and metrics that run often.
func (r *Runner) Positions() map[string]uint64 {
	out := make(map[string]uint64, len(r.slots))
	for _, s := range r.slots {
		out[s.name] = s.position()
	}
	return out
}

func (r *Runner) minPosition() uint64 {
	var lowest uint64
	for i, s := range r.slots {
		if p := s.position(); i == 0 || p < lowest {
			lowest = p
		}
	}
	return lowest
}

func (s *slot) position() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pos
}

// fold applies one whole commit to every model that does not have it yet.
func (r *Runner) fold(commit eventstore.Commit) {
	// The commit's position is what the append answered: the checkpoint and read-your-writes
	// need exactly that value.
	pos := commit.Position
	moved := false
	r.foldMu.Lock()
	for _, s := range r.slots {
		s.mu.Lock()
		if pos > s.pos {
			applyCommit(s.model, commit)
			s.pos = pos
			s.unsaved += len(commit.Events)
			moved = true
		}
		s.mu.Unlock()
	}
	r.foldMu.Unlock()
	if moved {
		r.broadcast()
	}
}

func (r *Runner) broadcast() {
	r.notifyMu.Lock()
	close(r.notify)
	r.notify = make(chan struct{})
	r.notifyMu.Unlock()
}

// saveDue saves the models with enough unsaved events (or unsaved for long enough).
func (r *Runner) saveDue(countOnly bool) {
	if r.opts.Dir == "" {
		return
	}
	for _, s := range r.slots {
		s.mu.RLock()
		due := s.unsaved >= r.opts.SnapshotEvery ||
			(!countOnly || time.Since(s.lastSave) >= r.opts.SnapshotInterval) && s.unsaved > 0
		s.mu.RUnlock()
		if due {
			if err := r.save(s); err != nil {
				r.log.Error("projections: snapshot failed", zap.String("model", s.name), zap.Error(err))
			}
		}
	}
}

// SaveAll saves every model's snapshot now.
func (r *Runner) SaveAll() error {
	if r.opts.Dir == "" {
		return nil
	}
	var errs []error
	for _, s := range r.slots {
		errs = append(errs, r.save(s))
	}
	return errors.Join(errs...)
}

func (r *Runner) save(s *slot) error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	// State and position are taken under one read lock: they always belong together.
	s.mu.RLock()
	state, err := s.model.MarshalState()
	snap := snapshot{Model: s.name, Version: s.model.Version(), Position: s.pos, State: state}
	unsaved := s.unsaved
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s.name, err)
	}
	if err := writeSnapshot(r.opts.Dir, snap); err != nil {
		return err
	}
	s.mu.Lock()
	s.unsaved -= unsaved
	s.lastSave = time.Now()
	s.mu.Unlock()
	return nil
}

// WaitFor blocks until every model (or only the named ones) has folded the commit at
// position, or ctx ends (with ctx's error): read-your-writes for a client that has just
// appended at that position.
func (r *Runner) WaitFor(ctx context.Context, position uint64, models ...string) error {
	slots := r.slots
	if len(models) > 0 {
		slots = nil
		for _, name := range models {
			s, ok := r.byName[name]
			if !ok {
				return fmt.Errorf("%w: %q", ErrUnknownModel, name)
			}
			slots = append(slots, s)
		}
	}
	for {
		r.notifyMu.Lock()
		ch := r.notify
		r.notifyMu.Unlock()
		reached := true
		for _, s := range slots {
			if s.position() < position {
				reached = false
				break
			}
		}
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ModelStatus reports a model's progress.
type ModelStatus struct {
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Position uint64 `json:"position"`
	Head     uint64 `json:"head"`
	// Lag is Head - Position, in the store's position units: commits on JetStream (whose
	// positions are dense), bytes of log on KurrentDB (log offsets). 0 means caught up;
	// compare it over time on one backend, not across backends.
	Lag uint64 `json:"lag"`
	// Digest is the SHA-256 of the model's canonical state: two processes that folded the
	// same log to the same position agree on it.
	Digest string `json:"digest"`
	// Error is set when the head or the digest could not be computed.
	Error string `json:"error,omitempty"`
}

// Status reports every model: name, version, position, lag behind the log's head, digest.
func (r *Runner) Status(ctx context.Context) []ModelStatus {
	head, headErr := r.store.Head(ctx)
	out := make([]ModelStatus, 0, len(r.slots))
	for _, s := range r.slots {
		s.mu.RLock()
		st := ModelStatus{Name: s.name, Version: s.model.Version(), Position: s.pos, Head: head}
		digest, err := Digest(s.model)
		s.mu.RUnlock()
		st.Digest = digest
		if head > st.Position {
			st.Lag = head - st.Position
		}
		if err := errors.Join(headErr, err); err != nil {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	return out
}

// Rebuild folds the named model from zero beside the live one, which keeps serving, then
// swaps it in at the live position and saves its snapshot.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	s, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownModel, name)
	}
	m, _ := newModel(name)
	n := 0
	apply := func(c eventstore.Commit) error {
		applyCommit(m, c)
		n += len(c.Events)
		return nil
	}
	// Catch up without blocking the live fold...
	pos, err := eventstore.ReadCommits(ctx, r.store, 0, r.decoding(), apply)
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	// ...then, with the live fold paused, reach at least the live position and swap.
	r.foldMu.Lock()
	live := s.position()
	if pos < live {
		pos, err = eventstore.ReadCommits(ctx, r.store, pos, r.decoding(), func(c eventstore.Commit) error {
			if c.Position > live {
				return eventstore.StopFollowing
			}
			return apply(c)
		})
		if err == nil && pos < live {
			err = fmt.Errorf("the log ends at %d, before the live position %d", pos, live)
		}
		if err != nil {
			r.foldMu.Unlock()
			return fmt.Errorf("rebuild %s: %w", name, err)
		}
	}
	s.mu.Lock()
	s.model, s.pos, s.unsaved = m, pos, n
	s.mu.Unlock()
	r.foldMu.Unlock()
	r.broadcast()
	r.log.Info("projections: model rebuilt", zap.String("model", name), zap.Uint64("position", pos), zap.Int("events", n))
	if r.opts.Dir != "" {
		return r.save(s)
	}
	return nil
}

// read runs fn on the named model under its read lock.
func (r *Runner) read(name string, fn func(Model)) {
	s := r.byName[name]
	s.mu.RLock()
	defer s.mu.RUnlock()
	fn(s.model)
}

// Quota is the quota of a subscription as of now; false when no such subscription.
func (r *Runner) Quota(subID uuid.UUID, now time.Time) (v QuotaView, ok bool) {
	r.read(QuotaName, func(m Model) { v, ok = m.(*QuotaModel).Quota(subID, now) })
	return v, ok
}

// Owner is the customer a subscription belongs to; false when no such subscription.
func (r *Runner) Owner(subID uuid.UUID) (owner string, ok bool) {
	r.read(QuotaName, func(m Model) { owner, ok = m.(*QuotaModel).Owner(subID) })
	return owner, ok
}

// Quotas is every subscription's quota as of now, by subscription id.
func (r *Runner) Quotas(now time.Time) (v []QuotaView) {
	r.read(QuotaName, func(m Model) { v = m.(*QuotaModel).All(now) })
	return v
}

// SubscriptionExpiries are the expiries of a subscription's services and space blocks.
func (r *Runner) SubscriptionExpiries(subID uuid.UUID, now time.Time) (v []ExpiryView, ok bool) {
	r.read(ExpiryName, func(m Model) { v, ok = m.(*ExpiryModel).Subscription(subID, now) })
	return v, ok
}

// ExpiringWithin is what expires from today to today+days, across subscriptions.
func (r *Runner) ExpiringWithin(days int, now time.Time) (v []ExpiryView) {
	r.read(ExpiryName, func(m Model) { v = m.(*ExpiryModel).Within(days, now) })
	return v
}

// PendingPayments is a page of confirmed, unpaid orders, oldest first.
func (r *Runner) PendingPayments(q PendingQuery, now time.Time) (p PendingPage, err error) {
	r.read(PendingName, func(m Model) { p, err = m.(*PendingModel).Page(q, now) })
	return p, err
}

// PendingSummary totals the pending orders by method and age bucket.
func (r *Runner) PendingSummary(now time.Time) (s PendingSummary) {
	r.read(PendingName, func(m Model) { s = m.(*PendingModel).Summary(now) })
	return s
}

// ExportJSON writes the named model's whole view as of now as JSON.
func (r *Runner) ExportJSON(w io.Writer, name string, now time.Time) error {
	x, err := r.export(name, now)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(x.json)
}

// ExportCSV writes the named model's whole list as of now as CSV (for pending-payment, the
// orders; PendingSummary().Rows() is the summary's).
func (r *Runner) ExportCSV(w io.Writer, name string, now time.Time) error {
	x, err := r.export(name, now)
	if err != nil {
		return err
	}
	return x.csv(w)
}

func (r *Runner) export(name string, now time.Time) (x export, err error) {
	if _, ok := r.byName[name]; !ok {
		return export{}, fmt.Errorf("%w: %q", ErrUnknownModel, name)
	}
	r.read(name, func(m Model) { x, err = exportOf(m, now) })
	return x, err
}

// CreditsDue lists the credits due to customers, with their totals.
func (r *Runner) CreditsDue(now time.Time) (c CreditsDue) {
	r.read(PendingName, func(m Model) { c = m.(*PendingModel).CreditsDue(now) })
	return c
}

// SweepDue lists the orders the sweeper has work for as of now: past their last day to pay,
// or carts untouched for abandonDays.
func (r *Runner) SweepDue(now time.Time, abandonDays int) (ids []uuid.UUID) {
	r.read(PendingName, func(m Model) { ids = m.(*PendingModel).Due(now, abandonDays) })
	return ids
}
