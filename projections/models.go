package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// Models is one instance of every read model, folded to Position. AsOf returns one; the
// runner keeps its own behind locks.
type Models struct {
	Position uint64
	Quota    *QuotaModel
	Expiry   *ExpiryModel
	Pending  *PendingModel
	Lists    *ListsModel
}

// NewModels returns empty models.
func NewModels() *Models {
	return &Models{Quota: NewQuotaModel(), Expiry: NewExpiryModel(), Pending: NewPendingModel(), Lists: NewListsModel()}
}

// Model returns the model of that name.
func (ms *Models) Model(name string) (Model, error) {
	switch name {
	case QuotaName:
		return ms.Quota, nil
	case ExpiryName:
		return ms.Expiry, nil
	case PendingName:
		return ms.Pending, nil
	case ListsName:
		return ms.Lists, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownModel, name)
}

// Apply folds one event into every model. Apply a commit's events together, then set
// Position, as the runner does.
func (ms *Models) Apply(env eventstore.Envelope, ev domain.Event) {
	for _, m := range []Model{ms.Quota, ms.Expiry, ms.Pending, ms.Lists} {
		m.Apply(env, ev)
	}
}

// Digest is the named model's digest.
func (ms *Models) Digest(name string) (string, error) {
	m, err := ms.Model(name)
	if err != nil {
		return "", err
	}
	return Digest(m)
}

// ExportJSON writes the named model's whole view as of now as JSON.
func (ms *Models) ExportJSON(w io.Writer, name string, now time.Time) error {
	m, err := ms.Model(name)
	if err != nil {
		return err
	}
	return exportJSON(w, m, now)
}

// ExportCSV writes the named model's whole list as of now as CSV.
func (ms *Models) ExportCSV(w io.Writer, name string, now time.Time) error {
	m, err := ms.Model(name)
	if err != nil {
		return err
	}
	return exportCSV(w, m, now)
}

// PendingExport is the JSON export of the pending-payment model.
type PendingExport struct {
	Orders  []PendingView  `json:"orders"`
	Summary PendingSummary `json:"summary"`
}

// export is a model's whole view as of an instant, computed under the model's lock and
// written after it is released, so that a slow reader never holds up the fold.
type export struct {
	json any
	csv  func(io.Writer) error
}

func exportOf(m Model, now time.Time) (export, error) {
	switch m := m.(type) {
	case *QuotaModel:
		v := m.All(now)
		return export{v, func(w io.Writer) error { return WriteCSV(w, v) }}, nil
	case *ExpiryModel:
		v := m.All(now)
		return export{v, func(w io.Writer) error { return WriteCSV(w, v) }}, nil
	case *PendingModel:
		v := PendingExport{Orders: m.All(now), Summary: m.Summary(now)}
		return export{v, func(w io.Writer) error { return WriteCSV(w, v.Orders) }}, nil
	case *ListsModel:
		v := m.All()
		return export{v, func(w io.Writer) error { return WriteCSV(w, v.Orders) }}, nil
	}
	return export{}, fmt.Errorf("%w: %T", ErrUnknownModel, m)
}

func exportJSON(w io.Writer, m Model, now time.Time) error {
	x, err := exportOf(m, now)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(x.json)
}

func exportCSV(w io.Writer, m Model, now time.Time) error {
	x, err := exportOf(m, now)
	if err != nil {
		return err
	}
	return x.csv(w)
}

// AsOf folds the log from the start up to the last commit recorded at or before t, and
// returns every model as it was then. The log is read in position order and the fold stops
// at the first commit recorded after t.
func AsOf(ctx context.Context, store eventstore.Store, t time.Time) (*Models, error) {
	ms := NewModels()
	all := []Model{ms.Quota, ms.Expiry, ms.Pending, ms.Lists}
	pos, err := eventstore.ReadCommits(ctx, store, 0, eventstore.DecodeOptions{}, func(c eventstore.Commit) error {
		if c.Events[0].RecordedAt.After(t) {
			return eventstore.StopFollowing
		}
		for _, m := range all {
			applyCommit(m, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections as of %s: %w", t.Format(time.RFC3339Nano), err)
	}
	ms.Position = pos
	return ms, nil
}

func applyCommit(m Model, c eventstore.Commit) {
	for _, d := range c.Events {
		if d.Event != nil {
			m.Apply(d.Envelope, d.Event)
		}
	}
}
