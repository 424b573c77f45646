package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/internal/backoff"
)

// DefaultEnsureWait bounds how long Ensure keeps trying when its context has no deadline:
// enough for a cluster to elect its leaders after a rolling start, short enough that a
// server that will never answer is reported.
const DefaultEnsureWait = 60 * time.Second

// Ensure runs create, a CreateOrUpdate of a stream or key-value bucket with the given
// number of replicas, until it succeeds, retrying with backoff (100 ms doubling to 2 s,
// jittered; each attempt bounded to 1 s, then 2 s, up to 5 s) for as long as ctx lasts, or
// DefaultEnsureWait. Several replicas starting together create the same streams at the
// same moment, and a cluster just started may have no JetStream leader yet: both answer
// errors that pass. A server that cannot hold that many replicas (a single server, not a
// cluster) is refused at once, saying so.
func Ensure(ctx context.Context, what string, replicas int, create func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultEnsureWait)
		defer cancel()
	}
	bo := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 2 * time.Second})
	for attempt := 1; ; attempt++ {
		// A request made before the cluster has a leader goes unanswered: a short first
		// attempt finds the leader sooner, a longer one later lets a loaded server answer.
		actx, cancel := context.WithTimeout(ctx, min(time.Duration(attempt)*time.Second, 5*time.Second))
		err := create(actx)
		cancel()
		if err == nil {
			return nil
		}
		if permanent(err) {
			return explain(what, replicas, err)
		}
		if backoff.Sleep(ctx, bo.Next()) != nil {
			return fmt.Errorf("%s with %d replicas: still failing after %d attempts: %w", what, replicas, attempt, explain(what, replicas, err))
		}
	}
}

// permanent: an error a retry cannot mend.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrAuthorization)
	}
	switch apiErr.ErrorCode {
	case jsErrCodeReplicasNotSupported:
		return true
	case jetstream.JSErrCodeStreamNameInUse, jsErrCodeNoSuitablePeers:
		return false // a concurrent create; a cluster still forming, or a node coming back
	}
	return apiErr.Code == 400 || apiErr.Code == 403
}

// explain names what the server said no to, and what to do, for the errors an operator meets.
func explain(what string, replicas int, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrCodeReplicasNotSupported:
			return fmt.Errorf("%s: %d replicas asked (--nats-replicas), but the NATS server is not a cluster: "+
				"set --nats-replicas 1 or point at a JetStream cluster: %w", what, replicas, err)
		case jsErrCodeNoSuitablePeers:
			return fmt.Errorf("%s: %d replicas asked (--nats-replicas), but the cluster has fewer JetStream servers up: "+
				"start them or lower --nats-replicas: %w", what, replicas, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Server error codes nats.go does not name.
const (
	jsErrCodeReplicasNotSupported = 10074 // replicas > 1 not supported in non-clustered mode
	jsErrCodeNoSuitablePeers      = 10005 // no suitable peers for placement
)
