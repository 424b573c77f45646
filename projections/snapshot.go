package projections

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// snapshot is a model's checkpoint and state, saved together in one file so that a restart
// resumes exactly where the state is: nothing replayed twice, nothing missed.
type snapshot struct {
	Model    string          `json:"model"`
	Version  int             `json:"version"`
	Position uint64          `json:"position"`
	State    json.RawMessage `json:"state"`
}

func snapshotPath(dir, name string) string { return filepath.Join(dir, name+".snapshot.json") }

// writeSnapshot replaces the model's snapshot atomically: a temporary file is written and
// synced, renamed over the old one, and the folder synced so the rename survives a crash.
func writeSnapshot(dir string, s snapshot) (err error) {
	tmp, err := os.CreateTemp(dir, s.Model+".snapshot-*.tmp")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<16)
	if err = json.NewEncoder(w).Encode(s); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("snapshot %s: sync: %w", s.Model, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	if err = os.Rename(tmp.Name(), snapshotPath(dir, s.Model)); err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", s.Model, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("snapshot %s: sync folder: %w", s.Model, err)
	}
	return nil
}

// readSnapshot reads a model's snapshot; ok is false when there is none.
func readSnapshot(dir, name string) (s snapshot, ok bool, err error) {
	f, err := os.Open(snapshotPath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return snapshot{}, false, nil
	}
	if err != nil {
		return snapshot{}, false, err
	}
	defer f.Close()
	if err := json.NewDecoder(bufio.NewReaderSize(f, 1<<16)).Decode(&s); err != nil {
		return snapshot{}, false, fmt.Errorf("snapshot %s: %w", name, err)
	}
	return s, true, nil
}
