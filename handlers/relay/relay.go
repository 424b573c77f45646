// Package relay publishes the event log to a JetStream stream of integration messages (the
// notifications contract), from the log and after the append: a crash anywhere loses
// nothing, the relay resumes after the last message the stream holds, and a re-publish is
// dropped by the server by event id.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// Headers every published message carries besides Nats-Msg-Id (the event id). Position and
// Index, Stream and StreamVersion are the relay's checkpoint: the stream's last message says
// where to resume. They are the relay's business, not the contract's: consumers read the body.
const (
	HeaderPosition      = "Orders-Position"
	HeaderIndex         = "Orders-Index"
	HeaderType          = "Orders-Event-Type"
	HeaderStream        = "Orders-Stream"
	HeaderStreamVersion = "Orders-Stream-Version"
	// HeaderContractError is set on an event of a contract type published outside the
	// contract because it could not be mapped (see Encode): why.
	HeaderContractError = "Orders-Contract-Error"
)

// Defaults of Options.
const (
	DefaultStream        = notifications.DefaultStream
	DefaultSubjectPrefix = notifications.DefaultSubjectPrefix
	// DefaultDuplicates is the server's de-duplication window by Nats-Msg-Id. The relay
	// resumes after the stream's last message, so a duplicate can only come from a publish
	// retried after a lost acknowledgement, which happens within seconds; ten minutes also
	// covers a second relay started by mistake against the same log for a while.
	DefaultDuplicates = 10 * time.Minute
)

// DefaultTypes are the events published by default, each as its message of the
// notifications contract: what the outside world acts on (the mailer, payments,
// provisioning). Cart editing (CoTerminationToggled, CheckoutStarted, PaymentMethodSelected,
// OrderModified, SpaceIncreaseRequested) and the order slot bookkeeping are internal steps:
// publishing them would make their shape a public contract for nothing.
//
// They are the contract's types: a type added to the contract is published from then on.
func DefaultTypes() []string { return notifications.Types() }

// Options configures a Relay. The zero value is the product's default.
type Options struct {
	// Stream is the JetStream stream of integration messages. Default "NOTIFICATIONS".
	Stream string
	// SubjectPrefix: messages go to "<prefix>.<EventType>.<aggregateId>".
	// Default "orders.notifications".
	SubjectPrefix string
	// Types are the event types published. Default DefaultTypes(); AllTypes publishes all.
	// An event the notifications contract has no type for goes out as a message outside the
	// contract (version 0, the stored payload as data), for tools that follow the whole log;
	// its shape is the domain's and may change at any time.
	Types []string
	// AllTypes publishes every event of the log, ignoring Types.
	AllTypes bool
	// Catalogue resolves the labels and payment details the messages carry (the emails show
	// them). Default domain.DefaultCatalogue(); give orderd's.
	Catalogue *domain.Catalogue
	// Duplicates is the stream's de-duplication window. Default DefaultDuplicates.
	Duplicates time.Duration
	// MaxAge of the stream's messages; 0 keeps them forever. The mailer asks the stream
	// whether an order was paid, so keep at least the orders' payment term.
	MaxAge time.Duration
	// Replicas of the stream on a cluster. Default 1.
	Replicas int
	// PublishTimeout bounds one publish; it is retried, with the same message id, until it
	// is acknowledged or Run's context ends. Default 5 s.
	PublishTimeout time.Duration
	// RetryDelay is the first pause before following the log again after an error; it
	// doubles (jittered) with each failure in a row, up to 30 s. Default 200 ms.
	RetryDelay time.Duration
	// Logger. Default: no logging.
	Logger *zap.Logger
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Types == nil {
		o.Types = DefaultTypes()
	}
	if o.Catalogue == nil {
		o.Catalogue = domain.DefaultCatalogue()
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// StreamConfig is the notifications stream's configuration for opts.
func StreamConfig(opts Options) jetstream.StreamConfig {
	opts.defaults()
	return jetstream.StreamConfig{
		Name:        opts.Stream,
		Description: "integration messages published from the event log by the relay",
		Subjects:    []string{opts.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    opts.Replicas,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.Duplicates,
		// LastPublished reads the stream's last message to resume after it.
		AllowDirect: true,
	}
}

// EnsureStream creates the notifications stream, or updates it when its configuration
// differs from opts'. The relay calls it on every resume, and an update that changes
// nothing is not sent: nats-server v2.15 rewrites a stream's store configuration on any
// update without the lock a concurrent consumer creation reads it under (the race
// detector caught the relay's update meeting the mailer's consumer creation).
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.Stream, error) {
	cfg := StreamConfig(opts)
	if s, err := js.Stream(ctx, cfg.Name); err == nil && sameStream(s.CachedInfo().Config, cfg) {
		return s, nil
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// sameStream says whether the stream's configuration (as the server holds it, defaults
// filled in) already has every setting want sets.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Description == want.Description &&
		have.Storage == want.Storage && have.Retention == want.Retention && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates && have.AllowDirect == want.AllowDirect
}

// Relay follows the event log and publishes integration messages.
type Relay struct {
	store eventstore.Store
	js    jetstream.JetStream
	opts  Options
	types map[string]bool
	log   *zap.Logger
	// position is the last commit followed to its end (published or passed over), for
	// the lag metric.
	position atomic.Uint64
}

// Position is the log position of the last commit the relay has followed to its end.
func (r *Relay) Position() uint64 { return r.position.Load() }

// New returns a relay from store to js's server. Nothing happens until Run.
func New(store eventstore.Store, js jetstream.JetStream, opts Options) *Relay {
	opts.defaults()
	types := map[string]bool{}
	for _, t := range opts.Types {
		types[t] = true
	}
	return &Relay{store: store, js: js, opts: opts, types: types, log: opts.Logger}
}

// Checkpoint is the last event published: its commit's Position and its Index in the
// commit, and its stream and version, where the rest of a partly published commit is read.
// Seq is the notifications stream's last sequence, which the next message must follow.
type Checkpoint struct {
	Position      uint64
	Index         int
	Stream        string
	StreamVersion uint64
	Seq           uint64
}

// LastPublished reads the checkpoint from the stream's last message. An empty stream answers
// the zero Checkpoint with Index -1: start from the beginning of the log.
func LastPublished(ctx context.Context, s jetstream.Stream) (Checkpoint, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("relay: stream info: %w", err)
	}
	if info.State.Msgs == 0 || info.State.LastSeq == 0 {
		return Checkpoint{Index: -1, Seq: info.State.LastSeq}, nil
	}
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("relay: last message %d: %w", info.State.LastSeq, err)
	}
	pos, err1 := strconv.ParseUint(m.Header.Get(HeaderPosition), 10, 64)
	idx, err2 := strconv.Atoi(m.Header.Get(HeaderIndex))
	stream, ver, err3 := streamOf(m)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Checkpoint{}, fmt.Errorf("relay: last message %d has no checkpoint: %w", info.State.LastSeq, err)
	}
	return Checkpoint{Position: pos, Index: idx, Stream: stream, StreamVersion: ver, Seq: info.State.LastSeq}, nil
}

// streamOf reads the stream and version of the event a message was published from: its
// headers, or, in a message of a relay from before the notifications contract, its body.
func streamOf(m *jetstream.RawStreamMsg) (string, uint64, error) {
	if s := m.Header.Get(HeaderStream); s != "" {
		v, err := strconv.ParseUint(m.Header.Get(HeaderStreamVersion), 10, 64)
		return s, v, err
	}
	var legacy struct {
		Stream        string `json:"stream"`
		StreamVersion uint64 `json:"streamVersion"`
	}
	err := json.Unmarshal(m.Data, &legacy)
	return legacy.Stream, legacy.StreamVersion, err
}

// Run publishes until ctx ends, resuming after the stream's last message. It follows the
// log with eventstore.Follow: after an error of the log or the server it starts again, with
// backoff, from the stream's checkpoint. Run returns ctx's error, or what no new attempt can
// mend: a checkpoint the log does not have (eventstore.ErrInvalidPosition, a log imported
// into a new store under an old notifications stream).
func (r *Relay) Run(ctx context.Context) error {
	var p *pipeline
	// settle waits for the acknowledgements in flight of the last attempt (unless Run is
	// stopping): what the stream holds is settled before a new attempt reads its checkpoint.
	settle := func() {
		if p != nil {
			_ = p.close() // its failure ended the attempt, and Follow has logged it
			p.stop(nil)
			p = nil
		}
	}
	defer settle()
	return eventstore.Follow(ctx, r.store, 0, eventstore.FollowOptions{
		// The relay forwards the stored payloads: it decodes nothing.
		DecodeOptions: eventstore.DecodeOptions{Decode: func(string) bool { return false }, Logger: r.log},
		Name:          "relay",
		Backoff:       backoff.From(r.opts.RetryDelay),
		Resume: func(ctx context.Context) (context.Context, uint64, error) {
			settle()
			var (
				actx context.Context
				cp   Checkpoint
				err  error
			)
			actx, cp, p, err = r.resume(ctx)
			return actx, cp.Position, err
		},
	}, func(ctx context.Context, c eventstore.Commit) error {
		for _, d := range c.Events {
			if r.opts.AllTypes || r.types[d.Type] {
				if err := p.publish(ctx, d.Envelope); err != nil {
					return err
				}
			}
		}
		return p.commitEnd(ctx, c.Position)
	})
}

// resume starts an attempt: it reads the checkpoint from the stream, starts a pipeline
// whose failure cancels the attempt's context, and publishes the rest of the commit the
// last attempt stopped in. The log is then followed after the checkpoint's commit.
func (r *Relay) resume(parent context.Context) (context.Context, Checkpoint, *pipeline, error) {
	setup, cancel := context.WithTimeout(parent, r.opts.PublishTimeout)
	defer cancel()
	stream, err := EnsureStream(setup, r.js, r.opts)
	if err != nil {
		return nil, Checkpoint{}, nil, err
	}
	cp, err := LastPublished(setup, stream)
	if err != nil {
		return nil, Checkpoint{}, nil, err
	}
	r.log.Info("relay following the log", zap.String("stream", r.opts.Stream),
		zap.Uint64("position", cp.Position), zap.Int("index", cp.Index))
	r.position.Store(cp.Position)
	ctx, stop := context.WithCancelCause(parent)
	p := r.startPipeline(parent.Done(), stop, cp.Seq)
	// Positions are opaque (no "the one before"): the rest of a commit the relay stopped in
	// is read from its stream, after the last version published, then the log is followed
	// after that commit.
	if cp.Position > 0 {
		if err := r.finishCommit(ctx, p, cp); err != nil {
			return ctx, cp, p, err
		}
		if err := p.commitEnd(ctx, cp.Position); err != nil {
			return ctx, cp, p, err
		}
	}
	return ctx, cp, p, nil
}

// finishCommit publishes what follows the checkpoint in its commit: the stream's events
// after its version that carry the commit's position.
func (r *Relay) finishCommit(ctx context.Context, p *pipeline, cp Checkpoint) error {
	if cp.Stream == "" {
		// Not a message this relay wrote: nothing says where its commit's rest is.
		r.log.Warn("relay: the last message names no stream; following the log after its commit",
			zap.Uint64("position", cp.Position), zap.Int("index", cp.Index))
		return nil
	}
	envs, err := r.store.ReadStream(ctx, cp.Stream, cp.StreamVersion+1)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("relay: the rest of commit %d in %s: %w", cp.Position, cp.Stream, err)
	}
	for _, env := range envs {
		if env.Position != cp.Position {
			return nil
		}
		if !r.opts.AllTypes && !r.types[env.Type] {
			continue
		}
		if err := p.publish(ctx, env); err != nil {
			return err
		}
	}
	return nil
}

// pipelineDepth bounds the messages published and not yet acknowledged.
const pipelineDepth = 256

// pipeline publishes without waiting for each acknowledgement: a synchronous publish per
// event made the relay one round trip per event behind the log. Each message expects the
// stream's last sequence to be the one before it (Nats-Expected-Last-Sequence), so the
// server stores the relay's messages in order and refuses every message after one it did not
// store: the stream always holds a prefix of what was sent, and its last message stays a
// true checkpoint. The first failure ends the attempt; Run resumes from that checkpoint.
type pipeline struct {
	r       *Relay
	next    uint64 // the stream's last sequence the next message expects
	pending chan inflight
	stop    context.CancelCauseFunc
	quit    <-chan struct{} // Run is stopping: no attempt follows, nothing to wait for
	done    chan struct{}
	err     error // the first failure, read once done is closed
}

// inflight is a message awaiting its acknowledgement (fut set), or the end of a commit
// (position set), which the relay has followed to its end once everything before is acked.
type inflight struct {
	fut      jetstream.PubAckFuture
	eventID  string
	sent     time.Time
	position uint64
}

func (r *Relay) startPipeline(quit <-chan struct{}, stop context.CancelCauseFunc, lastSeq uint64) *pipeline {
	p := &pipeline{r: r, next: lastSeq, pending: make(chan inflight, pipelineDepth), stop: stop, quit: quit, done: make(chan struct{})}
	go p.await()
	return p
}

// publish sends one event with its id as Nats-Msg-Id (a copy that had already landed, from
// another relay, is dropped by the server) and its place in the stream as expectation.
func (p *pipeline) publish(ctx context.Context, env eventstore.Envelope) error {
	msg, err := Encode(p.r.opts.SubjectPrefix, p.r.opts.Catalogue, env)
	if err != nil {
		return err
	}
	if why := msg.Header.Get(HeaderContractError); why != "" {
		p.r.log.Error("event published outside the notifications contract: it could not be mapped",
			zap.String("event_id", env.ID.String()), zap.String("type", env.Type), zap.String("error", why))
	}
	id := env.ID.String()
	fut, err := p.r.js.PublishMsgAsync(msg, jetstream.WithMsgID(id), jetstream.WithExpectLastSequence(p.next))
	if err != nil {
		return fmt.Errorf("relay: publish event %s: %w", id, err)
	}
	p.next++
	return p.queue(ctx, inflight{fut: fut, eventID: id, sent: time.Now()})
}

// commitEnd marks the end of the commit at position.
func (p *pipeline) commitEnd(ctx context.Context, position uint64) error {
	return p.queue(ctx, inflight{position: position})
}

func (p *pipeline) queue(ctx context.Context, it inflight) error {
	select {
	case p.pending <- it:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// await takes the acknowledgements in publishing order and moves the relay's position.
func (p *pipeline) await() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for it := range p.pending {
		if p.err != nil {
			continue // the server refuses what followed the failure: nothing to wait for
		}
		if it.fut != nil {
			timer.Reset(time.Until(it.sent.Add(p.r.opts.PublishTimeout)))
			select {
			case <-it.fut.Ok():
			case err := <-it.fut.Err():
				p.fail(fmt.Errorf("relay: publish event %s: %w", it.eventID, err))
			case <-timer.C:
				p.fail(fmt.Errorf("relay: publish event %s: no acknowledgement within %s", it.eventID, p.r.opts.PublishTimeout))
			case <-p.quit:
				p.fail(context.Canceled)
			}
		}
		if it.position > 0 && p.err == nil {
			p.r.position.Store(it.position)
		}
	}
}

func (p *pipeline) fail(err error) {
	p.err = err
	p.stop(err)
}

// close waits for the acknowledgements in flight and returns the first failure.
func (p *pipeline) close() error {
	close(p.pending)
	<-p.done
	return p.err
}
