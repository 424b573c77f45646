package eventstore

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/internal/backoff"
	"github.com/einvoice/spaceorders/internal/retrying"
)

// Decoded is a stored event with its domain event.
type Decoded struct {
	Envelope
	// Event is the domain event, decoded once for every reader. It is nil for the log's own
	// signed checkpoints, for types the reader did not ask for (DecodeOptions.Decode), and
	// for events skipped as undecodable.
	Event domain.Event
}

// Commit is one whole commit of the log: what a reader acts on and checkpoints by.
type Commit struct {
	// Position is the commit's position, the one its Append answered.
	Position uint64
	// Events are the commit's events in order. The slice is reused once the call it was
	// handed to returns: copy what must outlive it.
	Events []Decoded
}

// DecodeOptions say which events a reader decodes, and what happens to those it cannot.
type DecodeOptions struct {
	// Codec decodes the payloads. Default DomainCodec().
	Codec *Codec
	// Decode reports whether events of type typ are decoded. Nil: every type. The others
	// are handed on with a nil Event (a reader that only forwards payloads decodes nothing).
	Decode func(typ string) bool
	// Undecodable decides about an event whose payload does not decode: nil skips it (its
	// Event stays nil), an error stops the read. Default: an event of a type this build does
	// not know (ErrUnknownEventType) is logged and skipped, since a newer build wrote it and
	// the rest still counts; any other failure (a payload that does not decode, an upcast
	// that fails) is an error, since reading past it would leave what the reader builds
	// silently wrong: the reader stops there, visibly behind.
	Undecodable func(env Envelope, err error) error
	// Logger hears skipped events and, for Follow, resubscriptions. Default: none.
	Logger *zap.Logger
}

// Decoder turns envelopes, in log order, into whole decoded commits: the one place where
// the log's events are grouped by commit and decoded.
type Decoder struct {
	opts DecodeOptions
	c    Commit
}

// NewDecoder returns a Decoder with opts' defaults filled in.
func NewDecoder(opts DecodeOptions) *Decoder {
	if opts.Codec == nil {
		opts.Codec = DomainCodec()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Undecodable == nil {
		log := opts.Logger
		opts.Undecodable = func(env Envelope, err error) error {
			if !errors.Is(err, ErrUnknownEventType) {
				return err
			}
			log.Warn("event of an unknown type skipped", zap.String("type", env.Type),
				zap.Uint64("position", env.Position), zap.Stringer("event_id", env.ID), zap.Error(err))
			return nil
		}
	}
	return &Decoder{opts: opts}
}

// Add takes the next envelope and answers the commit it closes (valid until the next Add),
// or false while the commit is still open.
func (d *Decoder) Add(env Envelope) (Commit, bool, error) {
	if len(d.c.Events) > 0 && env.Position != d.c.Position {
		return Commit{}, false, fmt.Errorf("commit %d ends without its last event: %w", d.c.Position, ErrBrokenCommit)
	}
	if len(d.c.Events) == 0 {
		d.c.Position = env.Position
	}
	ev := Decoded{Envelope: env}
	if env.Type != LogCheckpointType && (d.opts.Decode == nil || d.opts.Decode(env.Type)) {
		var err error
		if ev.Event, err = d.opts.Codec.DecodeDomain(env); err != nil {
			ev.Event = nil
			if err := d.opts.Undecodable(env, err); err != nil {
				return Commit{}, false, fmt.Errorf("event %s (%s) at position %d: %w", env.ID, env.Type, env.Position, err)
			}
		}
	}
	d.c.Events = append(d.c.Events, ev)
	if !env.LastInCommit() {
		return Commit{}, false, nil
	}
	c := d.c
	d.c.Events = d.c.Events[:0]
	return c, true, nil
}

// Open reports a commit begun and not finished, and its position: its events are held back
// until its last.
func (d *Decoder) Open() (position uint64, open bool) { return d.c.Position, len(d.c.Events) > 0 }

// Reset drops an open commit: the read it came from ended, and the next one starts after
// the last whole commit.
func (d *Decoder) Reset() { d.c.Events = d.c.Events[:0] }

// ErrBrokenCommit: a reader met a commit whose events did not arrive whole and in order.
var ErrBrokenCommit = errors.New("eventstore: broken commit")

// StopFollowing, returned by a reader's function, ends the read without an error, as
// fs.SkipAll ends a walk.
var StopFollowing = errors.New("eventstore: stop following")

// Fatal marks an error of a follower's function after which subscribing again cannot help
// (a refused configuration, damage): Follow stops and returns it. Every other error is
// followed by a new subscription.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return fatalError{err}
}

type fatalError struct{ err error }

func (f fatalError) Error() string { return f.err.Error() }
func (f fatalError) Unwrap() error { return f.err }

// FollowOptions configure Follow.
type FollowOptions struct {
	DecodeOptions
	// Name is the follower's name in logs.
	Name string
	// Backoff bounds the waits before subscribing again after a failure. Default
	// backoff.Default.
	Backoff backoff.Policy
	// Resume, when set, is called before every subscription (the first one too) and says
	// where it starts and under which context it runs (derived from ctx): a follower whose
	// checkpoint is kept elsewhere reads it there, and one whose work completes outside fn
	// can end the subscription by cancelling that context (with a cause, which is logged).
	// An error is a failed attempt, tried again after the backoff. Without Resume, Follow
	// starts after the position it is given, and after a failure resumes after the last
	// commit fn accepted.
	Resume func(ctx context.Context) (context.Context, uint64, error)
}

// Follow is the one way a follower reads the log: it calls fn with every whole commit
// with Position > after, decoded, in log order, first those stored and then live ones as
// they are appended. When the store fails (the connection drops, the server restarts) or
// fn returns an error, it subscribes again after the last commit fn accepted, after a
// capped, jittered exponential backoff that starts again once a subscription delivers.
//
// It returns ctx's error when ctx ends, nil when fn returns StopFollowing, and the error
// when fn returns one marked Fatal or the store refuses the position
// (ErrInvalidPosition); nothing else ends it.
//
// Durability: Follow reads through Store.Subscribe only, and a store hands on a commit
// only once it is durable (the embedded JetStream store waits for its group commit's fsync
// to cover the commit, KurrentDB acknowledges only what it has written), so no follower
// acts on, publishes or checkpoints a commit that a power loss could take back. Followers
// read the log through Follow, and nothing of the product reads the events stream around
// the Store.
func Follow(ctx context.Context, store Store, after uint64, opts FollowOptions, fn func(context.Context, Commit) error) error {
	dec := NewDecoder(opts.DecodeOptions)
	log := dec.opts.Logger
	if opts.Name != "" {
		log = log.With(zap.String("follower", opts.Name))
	}
	bo := backoff.New(opts.Backoff)
	for {
		sctx, from, progressed := ctx, after, false
		var err error
		if opts.Resume != nil {
			sctx, from, err = opts.Resume(ctx)
		}
		if err == nil {
			after = from
			dec.Reset()
			err = store.Subscribe(sctx, from, func(env Envelope) error {
				c, whole, err := dec.Add(env)
				if err != nil || !whole {
					return err
				}
				if err := fn(sctx, c); err != nil {
					return err
				}
				after, progressed = c.Position, true
				return nil
			})
		}
		var f fatalError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, StopFollowing):
			return nil
		case errors.As(err, &f):
			return f.err
		case errors.Is(err, ErrInvalidPosition):
			return err
		case sctx != nil && sctx.Err() != nil:
			err = context.Cause(sctx) // the follower ended the subscription: say why
		case err == nil:
			err = errors.New("the subscription ended")
		}
		if progressed {
			bo.Reset()
		}
		wait := bo.Next()
		log.Warn("following the log failed: subscribing again", zap.Uint64("after", after),
			zap.Error(err), zap.Duration("in", wait))
		// The supervisor running this follower shows it restarting in /readyz and metrics
		// until the store answers again, as if the part itself had failed.
		retrying.Failed(ctx, err)
		if backoff.Sleep(ctx, wait) != nil {
			return ctx.Err()
		}
		if _, err := store.Head(ctx); err == nil {
			retrying.Recovered(ctx)
		}
	}
}

// ReadCommits calls fn with every whole commit with Position > after, decoded, up to the
// log's head when it starts (a log that keeps growing is read as the snapshot it was):
// the bounded read of a rebuild or a replay. One attempt: a failure of the store is
// returned, not retried. fn may end it early with StopFollowing (then ReadCommits answers
// nil). It returns the position of the last commit fn accepted (after, if none).
func ReadCommits(ctx context.Context, store Store, after uint64, opts DecodeOptions, fn func(Commit) error) (uint64, error) {
	head, err := store.Head(ctx)
	if err != nil || head <= after {
		return after, err
	}
	dec := NewDecoder(opts)
	last := after
	err = store.Subscribe(ctx, after, func(env Envelope) error {
		c, whole, err := dec.Add(env)
		if err != nil || !whole {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		last = c.Position
		if last >= head {
			return StopFollowing
		}
		return nil
	})
	if errors.Is(err, StopFollowing) {
		return last, nil
	}
	return last, err
}
