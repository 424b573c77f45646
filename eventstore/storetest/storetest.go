// Package storetest is the conformance suite every eventstore.Store backend passes:
// a backend is done when Run passes on it, not when it compiles.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
)

// Features says what a backend cannot do, so that the suite skips rather than fails.
type Features struct {
	// Restart: Harness.Restart can close the store and open it again on the same data.
	Restart bool
}

// Harness is one fresh, empty store under test.
type Harness struct {
	Store eventstore.Store
	// Restart closes Store and returns a store on the same data (needed when
	// Features.Restart). The harness closes the returned store at the test's end.
	Restart  func(t *testing.T) eventstore.Store
	Features Features
}

// Run runs every rule of eventstore.Store as a subtest. newStore is called once per
// subtest and must return an empty store; it registers its own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"append then read returns every envelope field", testRoundTrip},
		{"versions are dense from 0", testDenseVersions},
		{"expected NoStream", testExpectedNoStream},
		{"expected Any", testExpectedAny},
		{"expected StreamExists", testExpectedStreamExists},
		{"expected Exact", testExpectedExact},
		{"expected ExactAt: the version decides, a stale position never writes", testExpectedExactAt},
		{"racing Exact appends have one winner per version", testRacingExact},
		{"a multi-event append is one commit", testMultiEventCommit},
		{"a refused multi-event append writes nothing", testRefusedMultiWritesNothing},
		{"re-appending the latest commit is a no-op", testIdempotentReappend},
		{"global order across streams", testGlobalOrder},
		{"ReadAll paging never splits a commit", testReadAllPaging},
		{"every event of a commit carries the append's position, on every read", testOnePositionPerCommit},
		{"ReadAll and Subscribe after any answered position start at the next commit", testAfterEveryPosition},
		{"Subscribe delivers everything after the checkpoint once in order", testSubscribeCatchUpAndLive},
		{"Subscribe resumes from the last position without gap or duplicate", testSubscribeResume},
		{"Subscribe returns the context's error", testSubscribeCancel},
		{"Subscribe returns fn's error", testSubscribeFnError},
		{"restart loses nothing", testRestart},
		{"payload up to MaxPayload accepted, over refused", testPayloadLimit},
		{"invalid appends are refused and write nothing", testInvalidAppends},
		{"unicode survives", testUnicode},
		{"ReadStream of a missing stream", testReadStreamMissing},
		{"Head is the last commit's position", testHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newStore(t)
			tc.fn(t, h)
		})
	}
}

// ctxT is a context bounded well within the test's time, so that a hung backend fails a
// subtest instead of the whole run.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
