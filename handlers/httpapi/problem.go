package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/command"
)

// ProblemBase prefixes every problem type: the type of a domain refusal is ProblemBase
// followed by its domain.Error.Code, e.g. ".../problems/order-already-confirmed".
const ProblemBase = "https://spaceorders.example/problems/"

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail,omitempty"`
	Instance      string `json:"instance,omitempty"`
	Code          string `json:"code"`
	CorrelationID string `json:"correlationId,omitempty"`
	// Field names the request field a refusal is about (an out-of-range value).
	Field string `json:"field,omitempty"`
	// Quote is the quote that holds now, on a quote-changed refusal: show it, and confirm
	// again with its totalCents as expectedTotalCents.
	Quote *domain.Quote `json:"quote,omitempty"`
	// CreditDueCents, on a payment refused as a payment of the order (subscription not
	// active), is the amount recorded as a credit due: money that arrived is never lost.
	CreditDueCents *int64 `json:"creditDueCents,omitempty"`
	// Version and Position, on such a payment, are those of the events that recorded it.
	Version  *uint64 `json:"version,omitempty"`
	Position *uint64 `json:"position,omitempty"`
}

// creditRecorded is the refusal of a payment as a payment of its order, while the money
// was recorded as a credit due (rule 6 of docs/RULES.md): the problem says both.
type creditRecorded struct {
	err               error
	credit            int64
	version, position uint64
}

func (e *creditRecorded) Error() string { return e.err.Error() }
func (e *creditRecorded) Unwrap() error { return e.err }

// Codes of the problems that are not domain refusals.
const (
	CodeMalformed            = "malformed-request"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not-found"
	CodeMethodNotAllowed     = "method-not-allowed"
	CodeConflict             = "conflict"
	CodePreconditionFailed   = "precondition-failed"
	CodeBodyTooLarge         = "body-too-large"
	CodeUnsupportedMediaType = "unsupported-media-type"
	CodeIdempotencyKeyReused = "idempotency-key-reused"
	CodeInternal             = "internal-error"
	CodeUnavailable          = "unavailable"
	CodeInsufficientStorage  = "insufficient-storage"
)

// noSpaceRetryAfter is the Retry-After of a 507, in seconds: the store resumes writing
// by itself within seconds of space being freed.
const noSpaceRetryAfter = "5"

// apiError is a refusal of the HTTP layer itself.
type apiError struct {
	status int
	code   string
	title  string
	detail string
}

func (e *apiError) Error() string { return e.title + ": " + e.detail }

func errorf(status int, code, title, detail string) *apiError {
	return &apiError{status: status, code: code, title: title, detail: detail}
}

// problemFor maps an error to its problem, once, here at the edge.
func problemFor(err error) Problem {
	var ae *apiError
	if errors.As(err, &ae) {
		return Problem{Type: ProblemBase + ae.code, Title: ae.title, Status: ae.status, Detail: ae.detail, Code: ae.code}
	}
	if de, ok := domain.AsError(err); ok {
		status := http.StatusUnprocessableEntity
		switch de.Kind {
		case domain.NotFound:
			status = http.StatusNotFound
		case domain.WrongState:
			status = http.StatusConflict
		}
		p := Problem{Type: ProblemBase + de.Code, Title: de.Message, Status: status, Code: de.Code}
		if d := err.Error(); d != de.Message {
			p.Detail = d
		}
		var fe *domain.FieldError
		if errors.As(err, &fe) {
			p.Field = fe.Field
		}
		var qc *domain.QuoteChangedError
		if errors.As(err, &qc) {
			q := qc.Quote
			p.Quote = &q
		}
		var cr *creditRecorded
		if errors.As(err, &cr) {
			p.CreditDueCents, p.Version, p.Position = &cr.credit, &cr.version, &cr.position
			p.Detail = fmt.Sprintf("%s The %d cents received are recorded as a credit due to the customer.", de.Message, cr.credit)
		}
		return p
	}
	switch {
	case errors.Is(err, command.ErrPreconditionFailed):
		return Problem{Type: ProblemBase + CodePreconditionFailed, Title: "The version in If-Match is not the current one.",
			Status: http.StatusPreconditionFailed, Detail: err.Error(), Code: CodePreconditionFailed}
	case errors.Is(err, command.ErrConflict):
		return Problem{Type: ProblemBase + CodeConflict, Title: command.ErrConflict.Error(),
			Status: http.StatusConflict, Code: CodeConflict}
	case errors.Is(err, eventstore.ErrNoSpace):
		// Before the context errors: a write that a full disk ended is not a slow one.
		return Problem{Type: ProblemBase + CodeInsufficientStorage, Title: "The event store has no disk space left; the command was not recorded.",
			Status: http.StatusInsufficientStorage, Code: CodeInsufficientStorage,
			Detail: "writing resumes by itself once an operator frees space; retry later with the same Idempotency-Key"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Problem{Type: ProblemBase + CodeUnavailable, Title: "The request was not completed in time.",
			Status: http.StatusServiceUnavailable, Code: CodeUnavailable}
	}
	// An internal error's text may name files or servers: it goes to the log, not the client.
	return Problem{Type: ProblemBase + CodeInternal, Title: "Something went wrong on our side.",
		Status: http.StatusInternalServerError, Code: CodeInternal}
}

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Instance = r.URL.Path
	p.CorrelationID = w.Header().Get(HeaderCorrelationID)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	switch p.Status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="spaceorders"`)
	case http.StatusInsufficientStorage:
		h.Set("Retry-After", noSpaceRetryAfter)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
