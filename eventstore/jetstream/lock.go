package jetstream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile names the lock an embedded server holds on its folder while it runs.
const lockFile = "spaceorders.lock"

// ErrDirInUse: another process (a running orderd, say) has an embedded server on the folder.
var ErrDirInUse = errors.New("jetstream: the data folder is in use by another process")

// lockDir takes an exclusive lock on dir for as long as the returned file stays open. Two
// servers writing one JetStream folder corrupt it, and nats-server does not stop a second
// one; the kernel drops the lock when the process dies, even by SIGKILL.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("jetstream: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (reach a running orderd's store through its NATS URL, --nats-listen)", ErrDirInUse, dir)
		}
		return nil, fmt.Errorf("jetstream: lock %s: %w", dir, err)
	}
	return f, nil
}
