// Package supervise runs the long-lived parts of a binary (read models, relay, process
// manager, mailer, sweeper): a part that fails or returns is restarted with backoff, its
// state is visible to /readyz and to metrics, and a fatal failure stops them all.
package supervise

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/internal/backoff"
	"github.com/einvoice/spaceorders/internal/retrying"
)

// Backoff bounds the wait before a restart: it doubles from Min after each failure in a
// row, up to Max, and starts again from Min once a run has lasted Max. It is the policy
// the log followers use too (internal/backoff).
type Backoff = backoff.Policy

// DefaultBackoff is what a supervisor uses unless told otherwise.
var DefaultBackoff = backoff.Default

// fatal marks an error after which restarting cannot help.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }
func (f fatal) Unwrap() error { return f.err }

// Fatal marks err as one a restart cannot mend (a damaged log, a refused configuration):
// the supervisor stops every part and reports it on Done.
func Fatal(err error) error { return fatal{err} }

// State is where a part is in its life.
type State string

const (
	Running    State = "running"
	Restarting State = "restarting" // failed, waiting out its backoff
	Stopped    State = "stopped"    // the supervisor stopped, or a fatal failure
)

// Status is what the supervisor knows of one part.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"lastError,omitempty"`
	Since     time.Time `json:"since"` // when it entered State
}

// Supervisor runs parts from Start until Stop or a fatal failure.
type Supervisor struct {
	log     *zap.Logger
	backoff Backoff

	mu     sync.Mutex
	parts  []*part
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan error // one fatal error, or closed on Stop
	once   sync.Once

	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
}

type part struct {
	name   string
	run    func(context.Context) error
	status Status
}

// New returns a supervisor that logs to log and, when reg is not nil, registers
// spaceorders_part_up{part} and spaceorders_part_restarts_total{part}.
func New(log *zap.Logger, reg prometheus.Registerer, policy Backoff) *Supervisor {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Supervisor{log: log, backoff: policy.OrDefault(), done: make(chan error, 1),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spaceorders_part_up",
			Help: "1 while a background part runs, 0 while it waits to restart or has stopped."}, []string{"part"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spaceorders_part_restarts_total",
			Help: "Restarts of a background part after it failed or returned."}, []string{"part"}),
	}
	if reg != nil {
		reg.MustRegister(s.up, s.restarts)
	}
	return s
}

// Add registers a part; call it before Start. run should return only when ctx ends, or
// with an error (wrap it in Fatal when a restart cannot help).
func (s *Supervisor) Add(name string, run func(context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts = append(s.parts, &part{name: name, run: run, status: Status{Name: name, State: Stopped}})
	s.restarts.WithLabelValues(name).Add(0)
}

// Start runs every part until ctx ends, Stop is called, or a part fails fatally.
func (s *Supervisor) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.parts {
		s.set(p, Running, nil)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.keep(ctx, p)
		}()
	}
}

// keep runs p again and again until ctx ends or p fails fatally.
func (s *Supervisor) keep(ctx context.Context, p *part) {
	bo := backoff.New(s.backoff)
	for {
		began := time.Now()
		err := p.run(retrying.With(ctx, reporter{s, p}))
		if ctx.Err() != nil {
			s.mu.Lock()
			s.set(p, Stopped, nil)
			s.mu.Unlock()
			return
		}
		if err == nil {
			err = errors.New("returned while it should keep running")
		}
		var f fatal
		if errors.As(err, &f) {
			s.log.Error("background part failed and cannot be restarted: stopping", zap.String("part", p.name), zap.Error(f.err))
			s.mu.Lock()
			s.set(p, Stopped, f.err)
			s.mu.Unlock()
			select {
			case s.done <- err:
			default:
			}
			s.cancel()
			return
		}
		if time.Since(began) >= s.backoff.Max {
			bo.Reset() // it ran well for a while: this is a new failure, not the same one
		}
		sleep := bo.Next()
		s.log.Warn("background part failed: restarting", zap.String("part", p.name), zap.Error(err), zap.Duration("in", sleep))
		s.mu.Lock()
		s.set(p, Restarting, err)
		s.mu.Unlock()
		if backoff.Sleep(ctx, sleep) != nil {
			s.mu.Lock()
			s.set(p, Stopped, nil)
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		p.status.Restarts++
		s.restarts.WithLabelValues(p.name).Inc()
		s.set(p, Running, nil)
		s.mu.Unlock()
	}
}

// reporter hears of a part's own retries (eventstore.Follow subscribing again): they are
// shown as the supervisor's restarts are, so that /readyz and metrics see every failure.
type reporter struct {
	s *Supervisor
	p *part
}

func (r reporter) Failed(err error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.p.status.Restarts++
	r.s.restarts.WithLabelValues(r.p.name).Inc()
	r.s.set(r.p, Restarting, err)
}

func (r reporter) Recovered() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.p.status.State == Restarting {
		r.s.set(r.p, Running, nil)
	}
}

// set moves p to state; err, if any, becomes its last error. Call with s.mu held.
func (s *Supervisor) set(p *part, state State, err error) {
	p.status.State, p.status.Since = state, time.Now()
	if err != nil {
		p.status.LastError = err.Error()
	}
	v := 0.0
	if state == Running {
		v = 1
	}
	s.up.WithLabelValues(p.name).Set(v)
}

// Done delivers the error of a part that failed fatally; it is closed by Stop.
func (s *Supervisor) Done() <-chan error { return s.done }

// Stop ends every part and waits for them.
func (s *Supervisor) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.once.Do(func() {
		// Leave a fatal error in the channel for whoever has not read it yet.
		select {
		case err := <-s.done:
			s.done <- err
		default:
			close(s.done)
		}
	})
}

// Status reports every part, in the order they were added.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, len(s.parts))
	for i, p := range s.parts {
		out[i] = p.status
	}
	return out
}
