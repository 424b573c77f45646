package jetstream

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
)

// How a server says it has no space, each named eventstore.ErrNoSpace; other errors kept.
func TestWriteErrNamesLackOfSpace(t *testing.T) {
	faulted, raise := context.WithCancelCause(context.Background())
	raise(fmt.Errorf("%w: disk full", eventstore.ErrNoSpace))
	timeout := errors.New("nats: timeout")
	for _, c := range []struct {
		ctx     context.Context
		err     error
		noSpace bool
	}{
		{faulted, context.Canceled, true},
		{context.Background(), &jetstream.APIError{ErrorCode: 10023, Description: "insufficient resources"}, true},
		{context.Background(), &jetstream.APIError{ErrorCode: 10047, Description: "insufficient storage resources available"}, true},
		{context.Background(), &jetstream.APIError{ErrorCode: 10077, Description: "write x.blk: no space left on device"}, true},
		{context.Background(), &jetstream.APIError{ErrorCode: 10071, Description: "wrong last sequence: 3"}, false},
		{context.Background(), timeout, false},
	} {
		got := writeErr(c.ctx, c.err)
		if errors.Is(got, eventstore.ErrNoSpace) != c.noSpace {
			t.Errorf("%v: %v, no space %v", c.err, got, c.noSpace)
		}
		if !c.noSpace && got != c.err {
			t.Errorf("%v became %v", c.err, got)
		}
	}
}
