// Package retrying lets a loop that retries by itself (eventstore.Follow subscribing
// again after the store failed) tell whoever runs it, so that its failures are seen where
// every other part's are: the supervisor puts a Reporter in each part's context, and the
// loop reports through the context it was given. Without a Reporter, reports go nowhere.
package retrying

import "context"

// Reporter hears of the retries of the part whose context carries it.
type Reporter interface {
	// Failed: the part failed and will try again by itself.
	Failed(err error)
	// Recovered: what the part needs answers again after a failure.
	Recovered()
}

type key struct{}

// With returns ctx carrying r.
func With(ctx context.Context, r Reporter) context.Context { return context.WithValue(ctx, key{}, r) }

// Failed reports err to ctx's Reporter, if any.
func Failed(ctx context.Context, err error) {
	if r, ok := ctx.Value(key{}).(Reporter); ok {
		r.Failed(err)
	}
}

// Recovered reports to ctx's Reporter, if any, that the part works again.
func Recovered(ctx context.Context) {
	if r, ok := ctx.Value(key{}).(Reporter); ok {
		r.Recovered()
	}
}
