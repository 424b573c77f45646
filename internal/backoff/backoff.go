// Package backoff is the one policy for waiting before trying again: capped exponential,
// jittered. The supervisor's restarts and the log followers' resubscriptions share it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy bounds the wait before a new attempt: it doubles from Min after each failure in a
// row, up to Max.
type Policy struct{ Min, Max time.Duration }

// Default is what a retrying part uses unless told otherwise.
var Default = Policy{Min: 200 * time.Millisecond, Max: 30 * time.Second}

// OrDefault is p, or Default when p has no Min; a Max below Min is raised to Min (a wait
// that does not grow), rather than replaced by Default's much shorter one.
func (p Policy) OrDefault() Policy {
	if p.Min <= 0 {
		return Default
	}
	p.Max = max(p.Max, p.Min)
	return p
}

// Backoff counts the failures in a row of one part. The zero value is not usable: use New.
type Backoff struct {
	p    Policy
	wait time.Duration
}

// New starts a count of failures under p (Default when p does not make sense).
func New(p Policy) *Backoff {
	p = p.OrDefault()
	return &Backoff{p: p, wait: p.Min}
}

// Next is the wait before the next attempt: between half and all of the current step, so
// that parts failing together (a store gone) do not come back in step. Each call doubles
// the step, up to Max.
func (b *Backoff) Next() time.Duration {
	d := jitter(b.wait)
	b.wait = min(b.wait*2, b.p.Max)
	return d
}

// Delay is the wait before attempt n+1 after n failed in a row (n from 0): what Next
// answers on its n+1th call, for a caller that counts the attempts itself (nats.go's
// CustomReconnectDelay).
func (p Policy) Delay(n int) time.Duration {
	p = p.OrDefault()
	d := p.Min
	for range n {
		if d >= p.Max {
			break
		}
		d = min(d*2, p.Max)
	}
	return jitter(d)
}

// jitter is a random wait between half and all of d.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// Reset starts again from Min: the part made progress, so its next failure is a new one.
func (b *Backoff) Reset() { b.wait = b.p.Min }

// Sleep waits d, or less if ctx ends first (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// From is the policy of a part configured with one retry delay: it starts at first and
// grows to Default.Max (or first, if that is longer).
func From(first time.Duration) Policy {
	return Policy{Min: first, Max: max(first, Default.Max)}.OrDefault()
}
