package testwait

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what Fatalf says instead of ending the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var looks atomic.Int32
	For(t, "the third look", func() bool { return looks.Add(1) == 3 })
	if n := looks.Load(); n != 3 {
		t.Fatalf("looked %d times, want 3", n)
	}
}

func TestWithinFailsNamingWhatNeverCame(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	Within(r, 30*time.Millisecond, "the relay's role", func() bool { return false })
	if !strings.Contains(r.fatal, "the relay's role") || !strings.Contains(r.fatal, "never") {
		t.Fatalf("failure %q", r.fatal)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("gave up after %s, before its bound", d)
	}
}

func TestUntilAndCheck(t *testing.T) {
	if !Until(time.Second, func() bool { return true }) {
		t.Fatal("Until: a condition that holds at once")
	}
	if Until(10*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until: a condition that never holds")
	}
	var n atomic.Int32
	r := &recorder{TB: t}
	Check(r, "three emails", func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if r.fatal != "" {
		t.Fatalf("Check failed: %s", r.fatal)
	}
}

func TestCheckWithinFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	var n atomic.Int32
	CheckWithin(r, 30*time.Millisecond, "three emails", func() error { return fmt.Errorf("%d so far", n.Add(1)) })
	if !strings.Contains(r.fatal, "three emails") || !strings.Contains(r.fatal, fmt.Sprintf("%d so far", n.Load())) {
		t.Fatalf("failure %q, after %d looks", r.fatal, n.Load())
	}
}
