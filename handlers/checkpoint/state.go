package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
)

// State is the last checkpoint a data folder's orderd wrote, and where: it lets the signer
// resume its digest without reading the log from the start, and the start check see a log
// that lost its tail (the last checkpoint written is no longer in it).
type State struct {
	Checkpoint audit.Checkpoint `json:"checkpoint"`
	Stream     string           `json:"stream"`
	Version    uint64           `json:"version"`
	EventID    uuid.UUID        `json:"eventId"`
	// WrittenAt is the position of the checkpoint event.
	WrittenAt uint64 `json:"writtenAt"`
}

// StateFile is where a data folder keeps its State.
func StateFile(dataDir string) string {
	return filepath.Join(dataDir, "checkpoints", "log-head.json")
}

// ReadState reads the data folder's State; nil, nil when it has none.
func ReadState(dataDir string) (*State, error) {
	b, err := os.ReadFile(StateFile(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", StateFile(dataDir), err)
	}
	return &st, nil
}

// writeState replaces the State file atomically (a crash leaves the old or the new one).
func writeState(dataDir string, st State) error {
	path := StateFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TailLost is a log that no longer holds the last checkpoint its data folder wrote.
type TailLost struct {
	State State
	Head  uint64
}

func (e *TailLost) Error() string {
	return fmt.Sprintf("the last checkpoint this data folder wrote (event %s, %s version %d, at position %d, signing %d events up to position %d) "+
		"is not in the log, whose head is position %d: commits were lost from the end of the log "+
		"(if the store was replaced on purpose, remove %s)",
		e.State.EventID, e.State.Stream, e.State.Version, e.State.WrittenAt, e.State.Checkpoint.Events, e.State.Checkpoint.Position,
		e.Head, "checkpoints/log-head.json")
}

// found reports whether the log holds the checkpoint event st names, and at which position.
func found(ctx context.Context, store eventstore.Store, st *State) (bool, uint64, error) {
	envs, err := store.ReadStream(ctx, st.Stream, st.Version)
	if errors.Is(err, eventstore.ErrStreamNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if len(envs) == 0 || envs[0].ID != st.EventID || envs[0].StreamVersion != st.Version {
		return false, 0, nil
	}
	return true, envs[0].Position, nil
}

// CheckTail is the start check of a data folder against its log: the last checkpoint the
// folder wrote must still be in it. It answers a *TailLost when it is not.
func CheckTail(ctx context.Context, store eventstore.Store, dataDir string) error {
	st, err := ReadState(dataDir)
	if err != nil || st == nil {
		return err
	}
	ok, _, err := found(ctx, store, st)
	if err != nil {
		return fmt.Errorf("read the last checkpoint: %w", err)
	}
	if ok {
		return nil
	}
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	return &TailLost{State: *st, Head: head}
}
