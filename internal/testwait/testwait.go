// Package testwait is how tests wait: for a condition to hold, never for a fixed time. A
// test that waits on what it expects passes as soon as it can and fails naming what never came.
package testwait

import (
	"testing"
	"time"
)

// Timeout bounds For and Check. It is only reached when the awaited thing never comes, so it
// is generous: two shared cores under the race detector can be slow.
const Timeout = 30 * time.Second

// The polling interval starts short, for conditions that hold almost at once, and grows to
// maxInterval, so that a check that costs an HTTP round trip does not load the machine.
const (
	minInterval = time.Millisecond
	maxInterval = 20 * time.Millisecond
)

// For polls cond until it holds; after Timeout the test fails, saying that what never came.
// Call it from the test's goroutine (it may call t.Fatalf, and so may cond).
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Timeout, what, cond)
}

// Within is For with its own bound, for a test whose point is how soon the condition holds;
// it returns how long the condition took.
func Within(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !Until(timeout, cond) {
		t.Fatalf("waited %s for %s: never", time.Since(start).Round(time.Millisecond), what)
	}
	return time.Since(start)
}

// Check polls check until it returns nil; after Timeout the test fails with what and the
// last error, which says how far things got.
func Check(t testing.TB, what string, check func() error) {
	t.Helper()
	CheckWithin(t, Timeout, what, check)
}

// CheckWithin is Check with its own bound; it returns how long check took to pass.
func CheckWithin(t testing.TB, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	var last error
	start := time.Now()
	if !Until(timeout, func() bool { last = check(); return last == nil }) {
		t.Fatalf("waited %s for %s: %v", time.Since(start).Round(time.Millisecond), what, last)
	}
	return time.Since(start)
}

// Until polls cond until it holds or timeout has passed, and says whether it held. It never
// fails a test itself: for goroutines other than the test's, which may not call t.Fatal, and
// for callers that go on otherwise.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := minInterval
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(interval, left)) // the one poll of the tests, between two looks at cond
		interval = min(2*interval, maxInterval)
	}
	return true
}
