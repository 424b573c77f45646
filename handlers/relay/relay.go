// Package relay publishes the event log to a JetStream stream of integration messages, from
// the log and after the append: a crash anywhere loses nothing, the relay resumes after the
// last message the stream holds, and a re-publish is dropped by the server by event id.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
)

// Headers every published message carries besides Nats-Msg-Id (the event id). Position and
// Index are the relay's checkpoint: the stream's last message says where to resume.
const (
	HeaderPosition = "Orders-Position"
	HeaderIndex    = "Orders-Index"
	HeaderType     = "Orders-Event-Type"
)

// Defaults of Options.
const (
	DefaultStream        = "NOTIFICATIONS"
	DefaultSubjectPrefix = "orders.notifications"
	// DefaultDuplicates is the server's de-duplication window by Nats-Msg-Id. The relay
	// resumes after the stream's last message, so a duplicate can only come from a publish
	// retried after a lost acknowledgement, which happens within seconds; ten minutes also
	// covers a second relay started by mistake against the same log for a while.
	DefaultDuplicates = 10 * time.Minute
)

// DefaultTypes are the events published by default: what the outside world acts on (the
// mailer, payments, provisioning). Cart editing (CoTerminationToggled, CheckoutStarted,
// PaymentMethodSelected, OrderModified, SpaceIncreaseRequested) and the order slot bookkeeping
// are internal steps: publishing them would make their shape a public contract for nothing.
func DefaultTypes() []string {
	return []string{
		"SubscriptionOpened", "SpaceAdded", "ServicesExtended",
		"OrderConfirmed", "PaymentRegistered", "OrderPaid", "OrderCancelled", "OrderExpired",
		// The calendar rules' facts that others act on: space aligned (provisioning), money
		// owed back (payments), orders ended or overdue (finance).
		"SpaceExtended", "CreditDue", "OrderOverdue", "OrderAbandoned",
	}
}

// Options configures a Relay. The zero value is the product's default.
type Options struct {
	// Stream is the JetStream stream of integration messages. Default "NOTIFICATIONS".
	Stream string
	// SubjectPrefix: messages go to "<prefix>.<EventType>.<aggregateId>".
	// Default "orders.notifications".
	SubjectPrefix string
	// Types are the event types published. Default DefaultTypes(); AllTypes publishes all.
	Types []string
	// AllTypes publishes every event of the log, ignoring Types.
	AllTypes bool
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
	// RetryDelay is the pause before following the log again after an error. Default 1 s.
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
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Message is the body of an integration message: the stored event, as JSON.
type Message struct {
	EventID       string              `json:"eventId"`
	Type          string              `json:"type"`
	SchemaVersion int                 `json:"schemaVersion"`
	Stream        string              `json:"stream"`
	StreamVersion uint64              `json:"streamVersion"`
	Position      uint64              `json:"position"`
	Index         int                 `json:"index"`
	RecordedAt    time.Time           `json:"recordedAt"`
	Payload       json.RawMessage     `json:"payload"`
	Metadata      eventstore.Metadata `json:"metadata"`
}

// Subject is where an event of type typ about aggregate id is published.
func Subject(prefix, typ, aggregateID string) string {
	return prefix + "." + typ + "." + aggregateID
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
		// The mailer asks for the last message of a subject ("was this order paid?").
		AllowDirect: true,
	}
}

// EnsureStream creates or updates the notifications stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.Stream, error) {
	cfg := StreamConfig(opts)
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("relay: stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// Relay follows the event log and publishes integration messages.
type Relay struct {
	store eventstore.Store
	js    jetstream.JetStream
	opts  Options
	types map[string]bool
	log   *zap.Logger
}

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
type Checkpoint struct {
	Position      uint64
	Index         int
	Stream        string
	StreamVersion uint64
}

// LastPublished reads the checkpoint from the stream's last message. An empty stream answers
// the zero Checkpoint with Index -1: start from the beginning of the log.
func LastPublished(ctx context.Context, s jetstream.Stream) (Checkpoint, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("relay: stream info: %w", err)
	}
	if info.State.Msgs == 0 || info.State.LastSeq == 0 {
		return Checkpoint{Index: -1}, nil
	}
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("relay: last message %d: %w", info.State.LastSeq, err)
	}
	pos, err1 := strconv.ParseUint(m.Header.Get(HeaderPosition), 10, 64)
	idx, err2 := strconv.Atoi(m.Header.Get(HeaderIndex))
	var body Message
	err3 := json.Unmarshal(m.Data, &body)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Checkpoint{}, fmt.Errorf("relay: last message %d has no checkpoint: %w", info.State.LastSeq, err)
	}
	return Checkpoint{Position: pos, Index: idx, Stream: body.Stream, StreamVersion: body.StreamVersion}, nil
}

// Run publishes until ctx ends, resuming after the stream's last message. Errors from the
// log or the server are logged and followed by a new attempt from the stream's checkpoint;
// Run returns only ctx's error, or an error in the stream's setup.
func (r *Relay) Run(ctx context.Context) error {
	for {
		err := r.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("relay interrupted, resuming from the stream's checkpoint", zap.Error(err),
			zap.Duration("after", r.opts.RetryDelay))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.opts.RetryDelay):
		}
	}
}

func (r *Relay) runOnce(ctx context.Context) error {
	setup, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()
	stream, err := EnsureStream(setup, r.js, r.opts)
	if err != nil {
		return err
	}
	cp, err := LastPublished(setup, stream)
	if err != nil {
		return err
	}
	r.log.Info("relay following the log", zap.String("stream", r.opts.Stream),
		zap.Uint64("position", cp.Position), zap.Int("index", cp.Index))
	// Positions are opaque (no "the one before"): the rest of a commit the relay stopped
	// in is read from its stream, after the last version published, then the log is
	// followed after that commit.
	if cp.Position > 0 {
		if err := r.finishCommit(ctx, cp); err != nil {
			return err
		}
	}
	return r.store.Subscribe(ctx, cp.Position, func(env eventstore.Envelope) error {
		if !r.opts.AllTypes && !r.types[env.Type] {
			return nil
		}
		return r.publish(ctx, env)
	})
}

// finishCommit publishes what follows the checkpoint in its commit: the stream's events
// after its version that carry the commit's position.
func (r *Relay) finishCommit(ctx context.Context, cp Checkpoint) error {
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
		if err := r.publish(ctx, env); err != nil {
			return err
		}
	}
	return nil
}

// publish sends one event, retrying with the same message id until the server acknowledges
// it: the server drops a copy that had already landed.
func (r *Relay) publish(ctx context.Context, env eventstore.Envelope) error {
	msg, err := Encode(r.opts.SubjectPrefix, env)
	if err != nil {
		return err
	}
	delay := 50 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
		_, err := r.js.PublishMsg(pctx, msg, jetstream.WithMsgID(env.ID.String()))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.log.Warn("relay publish failed, retrying", zap.String("event_id", env.ID.String()),
			zap.String("subject", msg.Subject), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Encode builds the integration message of an event (without its Nats-Msg-Id).
func Encode(prefix string, env eventstore.Envelope) (*nats.Msg, error) {
	_, id, err := eventstore.ParseStream(env.Stream)
	if err != nil {
		return nil, fmt.Errorf("relay: event %s: %w", env.ID, err)
	}
	body, err := json.Marshal(Message{
		EventID:       env.ID.String(),
		Type:          env.Type,
		SchemaVersion: env.SchemaVersion,
		Stream:        env.Stream,
		StreamVersion: env.StreamVersion,
		Position:      env.Position,
		Index:         env.Index,
		RecordedAt:    env.RecordedAt,
		Payload:       env.Payload,
		Metadata:      env.Metadata,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: encode event %s: %w", env.ID, err)
	}
	m := nats.NewMsg(Subject(prefix, env.Type, id.String()))
	m.Data = body
	m.Header.Set(HeaderPosition, strconv.FormatUint(env.Position, 10))
	m.Header.Set(HeaderIndex, strconv.Itoa(env.Index))
	m.Header.Set(HeaderType, env.Type)
	return m, nil
}
