package lazyfs

import (
	"errors"
	"os"
	"testing"
)

// ForTest mounts a lazy filesystem on a new temporary folder for the test, unmounted when it
// ends. Where FUSE cannot mount (no /dev/fuse, not root) the test is skipped, saying why,
// except under CI=true, where a power-loss test must never be skipped silently.
func ForTest(t testing.TB, opts Options) *FS {
	t.Helper()
	dir := t.TempDir()
	f, err := Mount(dir, opts)
	if errors.Is(err, ErrCannotMount) && os.Getenv("CI") != "true" {
		t.Skipf("power-loss test needs FUSE (root and /dev/fuse): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f
}
