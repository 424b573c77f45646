// Package lease gives a role that must run once per deployment (the relay, the sweeper) to
// one replica at a time: the holder keeps a NATS key-value entry alive, the others wait for
// it to lapse, so that when the holder dies another takes over within the bucket's TTL.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	js "github.com/einvoice/spaceorders/eventstore/jetstream"
)

// Bucket is the key-value bucket of the leases: one key per role, whose value is the
// holder's name.
const Bucket = "LEASES"

// OpenBucket creates or updates the bucket of leases. Its TTL is the leases' life: an
// entry not renewed within ttl is removed by the server, and the role is free.
func OpenBucket(ctx context.Context, j jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := js.Ensure(ctx, "lease bucket "+Bucket, replicas, func(ctx context.Context) error {
		var err error
		kv, err = j.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      Bucket,
			Description: "which replica does each role done once per deployment",
			TTL:         ttl,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		return err
	})
	return kv, err
}

// Leases runs roles under leases in one bucket, on behalf of one replica.
type Leases struct {
	kv     jetstream.KeyValue
	holder string
	ttl    time.Duration
	log    *zap.Logger
	held   *prometheus.GaugeVec

	mu    sync.Mutex
	roles map[string]*state
}

type state struct {
	held   bool
	holder string // the holder last seen, "" when none
	since  time.Time
}

// New returns Leases for the replica named holder; ttl must be the bucket's. reg, when
// not nil, gets spaceorders_role_held{role,replica} (1 while this replica holds it).
func New(kv jetstream.KeyValue, holder string, ttl time.Duration, log *zap.Logger, reg prometheus.Registerer) *Leases {
	l := &Leases{kv: kv, holder: holder, ttl: ttl, log: log, roles: map[string]*state{},
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spaceorders_role_held",
			Help: "1 while this replica holds the lease of a role done once per deployment, 0 while another does.",
		}, []string{"role", "replica"})}
	if reg != nil {
		reg.MustRegister(l.held)
	}
	return l
}

// Holder is this replica's name.
func (l *Leases) Holder() string { return l.holder }

// Status is what this replica knows of a role's lease.
type Status struct {
	Role string
	// Held: this replica holds the lease and runs the role.
	Held bool
	// Holder is the replica that holds it as last seen ("" when nobody does).
	Holder string
	Since  time.Time
}

// Status lists the roles this replica runs under a lease.
func (l *Leases) Status() []Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Status, 0, len(l.roles))
	for role, s := range l.roles {
		out = append(out, Status{Role: role, Held: s.held, Holder: s.holder, Since: s.since})
	}
	return out
}

// Holds says whether this replica holds role's lease now.
func (l *Leases) Holds(role string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.roles[role]
	return ok && s.held
}

func (l *Leases) set(role string, held bool, holder string) {
	l.mu.Lock()
	s := l.roles[role]
	if s == nil {
		s = &state{}
		l.roles[role] = s
	}
	if s.held != held || s.holder != holder {
		s.since = time.Now()
	}
	s.held, s.holder = held, holder
	l.mu.Unlock()
	v := 0.0
	if held {
		v = 1
	}
	l.held.WithLabelValues(role, l.holder).Set(v)
}

// Run runs work while this replica holds role's lease, until ctx ends: it waits for the
// lease, runs work with a context that ends when the lease is lost (not renewed within
// the TTL), and tries again. work's error ends Run (a supervisor restarts it); the
// lease is then given back, so that another replica may take the role at once.
func (l *Leases) Run(ctx context.Context, role string, work func(context.Context) error) error {
	l.set(role, false, "")
	for {
		rev, err := l.acquire(ctx, role)
		if err != nil {
			return err
		}
		l.log.Info("role taken", zap.String("role", role), zap.String("replica", l.holder))
		l.set(role, true, l.holder)
		err = l.hold(ctx, role, rev, work)
		l.set(role, false, "")
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return err
		}
		l.log.Warn("role lost: the lease could not be renewed in time", zap.String("role", role), zap.String("replica", l.holder))
	}
}

// acquire waits until the lease is free (or already this replica's, from before a
// restart) and takes it, answering its revision.
func (l *Leases) acquire(ctx context.Context, role string) (uint64, error) {
	poll := l.ttl / 5
	for {
		rev, err := l.kv.Create(ctx, role, []byte(l.holder))
		if err == nil {
			return rev, nil
		}
		holder := ""
		if errors.Is(err, jetstream.ErrKeyExists) {
			if e, gerr := l.kv.Get(ctx, role); gerr == nil {
				holder = string(e.Value())
				if holder == l.holder {
					// Ours from before a restart of this part: renew it as it stands.
					if rev, uerr := l.kv.Update(ctx, role, []byte(l.holder), e.Revision()); uerr == nil {
						return rev, nil
					}
				}
			}
		} else if errors.Is(err, nats.ErrConnectionClosed) {
			return 0, fmt.Errorf("%s: lease: %w", role, err)
		} else if ctx.Err() == nil {
			l.log.Debug("lease not reachable", zap.String("role", role), zap.Error(err))
		}
		l.set(role, false, holder)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// hold runs work and renews the lease three times per TTL; when renewal has not
// succeeded for most of the TTL, work is stopped before another replica can take over.
func (l *Leases) hold(ctx context.Context, role string, rev uint64, work func(context.Context) error) error {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- work(wctx) }()
	renewed := time.Now()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			// Give the role back at once: a stopped or failed holder need not be waited out.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = l.kv.Delete(dctx, role, jetstream.LastRevision(rev))
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: %w", role, err)
			}
			return nil
		case <-tick.C:
			rctx, cancel := context.WithTimeout(ctx, l.ttl/3)
			next, err := l.kv.Update(rctx, role, []byte(l.holder), rev)
			cancel()
			if err == nil {
				rev, renewed = next, time.Now()
				continue
			}
			if errors.Is(err, jetstream.ErrKeyExists) || time.Since(renewed) > l.ttl*2/3 {
				// Another replica holds it (ours lapsed), or it may lapse any moment.
				stop()
				<-done
				return nil
			}
		}
	}
}
