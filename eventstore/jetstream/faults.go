package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
)

// Faults tells a Store about write faults its server reports out of band. A single
// server that fails to write for lack of space says so only in its log and never answers
// the publish; *Embedded implements Faults from that log.
type Faults interface {
	// WriteErr is nil while the server can write, else why not (wrapping
	// eventstore.ErrNoSpace).
	WriteErr() error
	// Watch derives a context from ctx that is cancelled, with the fault as its cause,
	// when the server fails a write.
	Watch(ctx context.Context) (context.Context, context.CancelFunc)
}

// guard refuses an append at once while the server cannot write, and otherwise binds ctx
// to the next fault, so that a publish the server will never answer ends when it happens.
func (s *Store) guard(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.faults == nil {
		return ctx, func() {}, nil
	}
	if err := s.faults.WriteErr(); err != nil {
		return ctx, func() {}, err
	}
	ctx, release := s.faults.Watch(ctx)
	return ctx, release, nil
}

// writeErr names lack of space as eventstore.ErrNoSpace, whether the server answered so
// (its storage limit is reached) or a fault ended the wait for its answer.
func writeErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, eventstore.ErrNoSpace) {
		return cause
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrCodeInsufficientResources ||
		apiErr.ErrorCode == jsErrCodeStorageResourcesExceeded ||
		// "store failed" carries the file system's error in its description.
		strings.Contains(apiErr.Description, noSpaceText)) {
		return fmt.Errorf("%w: %w", eventstore.ErrNoSpace, err)
	}
	return err
}

// The server's "insufficient resources" (its storage limit is reached) and "insufficient
// storage resources available", which nats.go does not name.
const (
	jsErrCodeInsufficientResources    jetstream.ErrorCode = 10023
	jsErrCodeStorageResourcesExceeded jetstream.ErrorCode = 10047
)
