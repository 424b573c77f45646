package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The wait doubles per failure in a row, stays within [step/2, step], stops growing at Max,
// and Reset brings it back to Min.
func TestWaitsDoubleWithJitterUpToTheCap(t *testing.T) {
	b := New(Policy{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond})
	for round := range 2 {
		step := 100 * time.Millisecond
		for range 6 {
			d := b.Next()
			if d < step/2 || d > step {
				t.Fatalf("round %d: wait %s outside [%s, %s]", round, d, step/2, step)
			}
			step = min(2*step, 800*time.Millisecond)
		}
		b.Reset()
	}
}

// The jitter spreads parts that fail together: many draws of the same step are not all alike.
func TestJitterSpreadsTheWaits(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[New(Policy{Min: time.Second, Max: time.Second}).Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("50 waits took only %d values", len(seen))
	}
}

func TestNonsensePolicyFallsBackToDefault(t *testing.T) {
	for _, p := range []Policy{{}, {Min: -1, Max: time.Second}} {
		if got := p.OrDefault(); got != Default {
			t.Errorf("%+v: got %+v, want the default", p, got)
		}
	}
	// A Max below Min keeps Min: a long first wait is not cut to the default's 200 ms.
	if got := (Policy{Min: time.Minute, Max: 30 * time.Second}).OrDefault(); got != (Policy{Min: time.Minute, Max: time.Minute}) {
		t.Errorf("Max below Min: got %+v, want a steady minute", got)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context: %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
}

// Delay counts the attempts as Next does: attempt n waits between half and all of Min
// doubled n times, capped at Max.
func TestDelayFollowsNext(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	for n, step := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		step *= time.Millisecond
		for range 20 {
			if d := p.Delay(n); d < step/2 || d > step {
				t.Fatalf("Delay(%d) = %s, want between %s and %s", n, d, step/2, step)
			}
		}
	}
}
