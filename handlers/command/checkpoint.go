package command

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FileCheckpoint keeps a log position in a file, replaced atomically (write, then rename).
// It is for readers whose work is idempotent: a checkpoint lost in a crash only means some
// events are read again.
type FileCheckpoint string

// Load returns the saved position, 0 when there is none.
func (f FileCheckpoint) Load() (uint64, error) {
	b, err := os.ReadFile(string(f))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	pos, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", f, err)
	}
	return pos, nil
}

// Save replaces the saved position.
func (f FileCheckpoint) Save(pos uint64) error {
	if err := os.MkdirAll(filepath.Dir(string(f)), 0o755); err != nil {
		return err
	}
	tmp := string(f) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(pos, 10)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, string(f))
}
