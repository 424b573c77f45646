package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/projections"
)

// Replay is every read model as it stood at an instant.
type Replay struct {
	AsOf   time.Time
	Models *projections.Models
}

// ReplayAsOf folds the log up to the last commit recorded at or before t
// (projections.AsOf), reporting the read to progress.
func ReplayAsOf(ctx context.Context, store eventstore.Store, t time.Time, progress Progress) (Replay, error) {
	if progress == nil {
		progress = NoProgress{}
	}
	defer progress.Done()
	head, err := store.Head(ctx)
	if err != nil {
		return Replay{}, fmt.Errorf("head: %w", err)
	}
	progress.Start(head)
	ms, err := projections.AsOf(ctx, progressStore{store, progress}, t)
	if err != nil {
		return Replay{}, err
	}
	return Replay{AsOf: t, Models: ms}, nil
}

// progressStore reports what the fold reads, whether through ReadAll or Subscribe.
type progressStore struct {
	eventstore.Store
	progress Progress
}

func (s progressStore) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	page, err := s.Store.ReadAll(ctx, after, limit)
	if err == nil && len(page) > 0 {
		s.progress.Advance(page[len(page)-1].Position, len(page))
	}
	return page, err
}

func (s progressStore) Subscribe(ctx context.Context, after uint64, fn func(eventstore.Envelope) error) error {
	n := 0
	return s.Store.Subscribe(ctx, after, func(env eventstore.Envelope) error {
		n++
		// Reported by whole commits, and at most every 256 events.
		if env.LastInCommit() && n >= 256 {
			s.progress.Advance(env.Position, n)
			n = 0
		}
		err := fn(env)
		if err != nil && n > 0 {
			s.progress.Advance(env.Position, n)
			n = 0
		}
		return err
	})
}

// ReplayedModel is one model of a replay: its digest and its whole view as of the instant.
type ReplayedModel struct {
	Name    string          `json:"name"`
	Version int             `json:"version"`
	Digest  string          `json:"digest"`
	View    json.RawMessage `json:"view,omitempty"`
	Files   []string        `json:"files,omitempty"`
}

// ReplayReport is what WriteJSON prints and WriteFiles leaves as replay.json.
type ReplayReport struct {
	AsOf time.Time `json:"asOf"`
	// Position is the last commit folded in.
	Position uint64          `json:"position"`
	Models   []ReplayedModel `json:"models"`
}

func (r Replay) model(name string) (ReplayedModel, error) {
	m, err := r.Models.Model(name)
	if err != nil {
		return ReplayedModel{}, err
	}
	d, err := projections.Digest(m)
	if err != nil {
		return ReplayedModel{}, err
	}
	return ReplayedModel{Name: name, Version: m.Version(), Digest: d}, nil
}

// WriteJSON writes every model's digest and whole view, computed as of the instant, as one
// JSON document.
func (r Replay) WriteJSON(w io.Writer) error {
	rep := ReplayReport{AsOf: r.AsOf, Position: r.Models.Position}
	for _, name := range projections.ModelNames {
		rm, err := r.model(name)
		if err != nil {
			return err
		}
		var view bytes.Buffer
		if err := r.Models.ExportJSON(&view, name, r.AsOf); err != nil {
			return err
		}
		rm.View = bytes.TrimSpace(view.Bytes())
		rep.Models = append(rep.Models, rm)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteFiles writes, into dir (made if missing), <model>.json and/or <model>.csv, each the
// model's export as of the instant, and replay.json naming the instant, the position, the
// digests and the files.
func (r Replay) WriteFiles(dir string, asJSON, asCSV bool) (ReplayReport, error) {
	if !asJSON && !asCSV {
		return ReplayReport{}, errors.New("replay: no format to write")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ReplayReport{}, err
	}
	rep := ReplayReport{AsOf: r.AsOf, Position: r.Models.Position}
	for _, name := range projections.ModelNames {
		rm, err := r.model(name)
		if err != nil {
			return rep, err
		}
		if asJSON {
			f := name + ".json"
			if err := writeFile(filepath.Join(dir, f), func(w io.Writer) error { return r.Models.ExportJSON(w, name, r.AsOf) }); err != nil {
				return rep, err
			}
			rm.Files = append(rm.Files, f)
		}
		if asCSV {
			f := name + ".csv"
			if err := writeFile(filepath.Join(dir, f), func(w io.Writer) error { return r.Models.ExportCSV(w, name, r.AsOf) }); err != nil {
				return rep, err
			}
			rm.Files = append(rm.Files, f)
		}
		rep.Models = append(rep.Models, rm)
	}
	err := writeFile(filepath.Join(dir, "replay.json"), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
	return rep, err
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
