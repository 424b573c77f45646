package supervise

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/internal/retrying"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/einvoice/spaceorders/internal/testwait"
)

var quick = Backoff{Min: time.Millisecond, Max: 20 * time.Millisecond}

func TestAFailingPartIsRestartedAndItsFailuresShow(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(nil, reg, quick)
	var runs atomic.Int32
	s.Add("relay", func(ctx context.Context) error {
		if runs.Add(1) <= 3 {
			return errors.New("nats: connection closed")
		}
		<-ctx.Done()
		return ctx.Err()
	})
	s.Add("sweeper", func(ctx context.Context) error { <-ctx.Done(); return nil })
	s.Start(context.Background())
	testwait.For(t, "the relay runs after three failures", func() bool {
		st := s.Status()[0]
		return st.State == Running && st.Restarts == 3
	})
	st := s.Status()
	if st[0].LastError != "nats: connection closed" || st[1].State != Running || st[1].Restarts != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := metric(t, reg, "spaceorders_part_restarts_total", "relay"); got != 3 {
		t.Errorf("restarts metric %v, want 3", got)
	}
	if got := metric(t, reg, "spaceorders_part_up", "relay"); got != 1 {
		t.Errorf("up metric %v, want 1", got)
	}
	s.Stop()
	for _, p := range s.Status() {
		if p.State != Stopped {
			t.Errorf("%s is %s after Stop", p.Name, p.State)
		}
	}
	if _, open := <-s.Done(); open {
		t.Error("Done delivered an error without a fatal failure")
	}
}

// A part that returns nil while it should run is a failure too: it is restarted.
func TestAPartThatReturnsIsRestarted(t *testing.T) {
	s := New(nil, nil, quick)
	var runs atomic.Int32
	s.Add("mailer", func(ctx context.Context) error {
		if runs.Add(1) == 1 {
			return nil
		}
		<-ctx.Done()
		return nil
	})
	s.Start(context.Background())
	testwait.For(t, "a second run", func() bool { return runs.Load() == 2 && s.Status()[0].State == Running })
	if !strings.Contains(s.Status()[0].LastError, "returned") {
		t.Errorf("last error %q", s.Status()[0].LastError)
	}
	s.Stop()
}

func TestAFatalFailureStopsEveryPart(t *testing.T) {
	s := New(nil, nil, quick)
	var others atomic.Bool
	damaged := errors.New("the log has a gap at position 7")
	s.Add("check", func(ctx context.Context) error { return Fatal(damaged) })
	s.Add("projections", func(ctx context.Context) error {
		<-ctx.Done()
		others.Store(true)
		return nil
	})
	s.Start(context.Background())
	select {
	case err := <-s.Done():
		if !errors.Is(err, damaged) {
			t.Fatalf("Done: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no fatal error reported")
	}
	s.Stop()
	if !others.Load() {
		t.Error("the other part was not stopped")
	}
	if st := s.Status()[0]; st.State != Stopped || st.Restarts != 0 || st.LastError != damaged.Error() {
		t.Errorf("status %+v", st)
	}
}

// metric is the value of name{part=part} as the registry exposes it.
func metric(t *testing.T, reg *prometheus.Registry, name, part string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == part {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{part=%q}", name, part)
	return 0
}

// A part that retries by itself (a log follower subscribing again) reports through its
// context: it shows restarting, with its error and a restart counted, until it works again.
func TestAPartsOwnRetriesShow(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(nil, reg, quick)
	failed, recover := make(chan struct{}), make(chan struct{})
	s.Add("relay", func(ctx context.Context) error {
		retrying.Failed(ctx, errors.New("nats: no responders"))
		close(failed)
		<-recover
		retrying.Recovered(ctx)
		<-ctx.Done()
		return ctx.Err()
	})
	s.Start(context.Background())
	defer s.Stop()
	<-failed
	if st := s.Status()[0]; st.State != Restarting || st.Restarts != 1 || st.LastError != "nats: no responders" {
		t.Fatalf("after its own failure: %+v", st)
	}
	if got := metric(t, reg, "spaceorders_part_up", "relay"); got != 0 {
		t.Errorf("up metric %v while it retries, want 0", got)
	}
	if got := metric(t, reg, "spaceorders_part_restarts_total", "relay"); got != 1 {
		t.Errorf("restarts metric %v, want 1", got)
	}
	close(recover)
	testwait.For(t, "the relay runs again", func() bool { return s.Status()[0].State == Running })
	if got := metric(t, reg, "spaceorders_part_up", "relay"); got != 1 {
		t.Errorf("up metric %v once recovered, want 1", got)
	}
}
