package httpapi

import (
	"net/http"
	"testing"
)

// An answer that says "try again" is not kept under an Idempotency-Key: the retry must run
// the command, not get the same refusal for a day.
func TestOnlyFinalAnswersAreKeptUnderAnIdempotencyKey(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		keep   bool
	}{
		{http.StatusOK, `{"orderId":"x"}`, true},
		{http.StatusCreated, `{}`, true},
		{http.StatusConflict, `{"code":"order-already-confirmed"}`, true},
		{http.StatusUnprocessableEntity, `{"code":"invalid-quantity"}`, true},
		{http.StatusPreconditionFailed, `{"code":"precondition-failed"}`, true},
		{http.StatusConflict, `{"code":"` + CodeConflict + `"}`, false},
		{http.StatusConflict, `{"code":"order-in-progress"}`, false},
		{http.StatusInternalServerError, `{"code":"internal-error"}`, false},
		{http.StatusServiceUnavailable, `{"code":"unavailable"}`, false},
	} {
		rec := &recorded{status: c.status, body: []byte(c.body)}
		if got := !rec.retryable(); got != c.keep {
			t.Errorf("%d %s: kept %v, want %v", c.status, c.body, got, c.keep)
		}
	}
}
