package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// A write a full disk refused is a 507 that says so, and it is not kept under an
// Idempotency-Key: the retry must run once space is back.
func TestNoSpaceIs507(t *testing.T) {
	p := problemFor(fmt.Errorf("append order-x: %w", eventstore.ErrNoSpace))
	if p.Status != http.StatusInsufficientStorage || p.Code != CodeInsufficientStorage {
		t.Errorf("%d %s, want 507 %s", p.Status, p.Code, CodeInsufficientStorage)
	}
	if (&recorded{status: p.Status}).retryable() == false {
		t.Errorf("a 507 would be kept under an Idempotency-Key")
	}
}

// stuckKV is a bucket whose server never answers a write (a single server out of disk
// says so only in its log): Create waits for its context. A stand-in for that one fault.
type stuckKV struct{ jetstream.KeyValue }

func (stuckKV) Create(ctx context.Context, _ string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// When the store's fault ends the wait for the idempotency bucket (a context cancelled
// with ErrNoSpace as its cause), the request's answer is the 507 too, not a 503 for a
// timeout.
func TestAFaultEndingTheBucketsWaitIs507(t *testing.T) {
	watch := func(ctx context.Context) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancelCause(ctx)
		cancel(fmt.Errorf("%w: disk full", eventstore.ErrNoSpace)) // the fault, at once
		return ctx, func() { cancel(nil) }
	}
	s := newIdempotency(time.Hour, 16, stuckKV{}, zap.NewNop(), watch)
	_, _, err := s.claim(context.Background(), &idemEntry{key: "k", done: make(chan struct{})})
	if !errors.Is(err, eventstore.ErrNoSpace) {
		t.Fatalf("claim answered %v, want the fault", err)
	}
	if p := problemFor(err); p.Status != http.StatusInsufficientStorage || p.Code != CodeInsufficientStorage {
		t.Errorf("%v: %d %s, want 507 %s", err, p.Status, p.Code, CodeInsufficientStorage)
	}
}
