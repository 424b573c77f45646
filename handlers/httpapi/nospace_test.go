package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
)

// A write a full disk refused is a 507 that says so, also when the fault ended a wait
// (a context cancelled with ErrNoSpace as its cause), and it is not kept under an
// Idempotency-Key: the retry must run once space is back.
func TestNoSpaceIs507(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%w: disk full", eventstore.ErrNoSpace))
	for _, err := range []error{
		fmt.Errorf("append order-x: %w", eventstore.ErrNoSpace),
		fmt.Errorf("append order-x: %w", context.Cause(ctx)),
	} {
		p := problemFor(err)
		if p.Status != http.StatusInsufficientStorage || p.Code != CodeInsufficientStorage {
			t.Errorf("%v: %d %s, want 507 %s", err, p.Status, p.Code, CodeInsufficientStorage)
		}
		if (&recorded{status: p.Status}).retryable() == false {
			t.Errorf("a 507 would be kept under an Idempotency-Key")
		}
	}
}
