package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/projections"
)

// ModelCheck is one read model compared: the digest the server reported at its position,
// and the digest of the model rebuilt from zero up to that position.
type ModelCheck struct {
	Name     string `json:"name"`
	Position uint64 `json:"position"`
	Reported string `json:"reported"`
	Rebuilt  string `json:"rebuilt"`
	// Problem says why the model does not match; empty when it does.
	Problem string `json:"problem,omitempty"`
}

// ModelsReport is the outcome of VerifyModels.
type ModelsReport struct {
	Models []ModelCheck `json:"models"`
	// Events is how many events were read; Skipped how many of them this build could not
	// decode (they are skipped, as the projections skip them).
	Events  int `json:"events"`
	Skipped int `json:"skipped"`
}

// Differing names the models that do not match.
func (r ModelsReport) Differing() []string {
	var names []string
	for _, c := range r.Models {
		if c.Problem != "" {
			names = append(names, c.Name)
		}
	}
	return names
}

// WriteText writes one line per model.
func (r ModelsReport) WriteText(w io.Writer) error {
	for _, c := range r.Models {
		status := "ok"
		if c.Problem != "" {
			status = "DIFFERS: " + c.Problem
		}
		if _, err := fmt.Fprintf(w, "%-16s position %-8d reported %-16.16s rebuilt %-16.16s %s\n",
			c.Name, c.Position, orDash(c.Reported), orDash(c.Rebuilt), status); err != nil {
			return err
		}
	}
	if r.Skipped > 0 {
		_, err := fmt.Fprintf(w, "%d of %d events could not be decoded by this build and were skipped\n", r.Skipped, r.Events)
		return err
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// VerifyModels rebuilds every read model from zero out of log and compares each one's
// digest, after every commit with Position <= the position the server reported for it,
// with the digest the server reported. A model the server does not report, reports with
// an error or with another code version, or reports at a position the log has not reached,
// is a difference too. The error is for a log that cannot be read.
func VerifyModels(ctx context.Context, log eventstore.Store, reported []projections.ModelStatus, progress Progress) (ModelsReport, error) {
	ms := projections.NewModels()
	rep, pending := checkReported(ms, reported)
	var upTo uint64
	for _, c := range pending.checks {
		upTo = max(upTo, c.Position)
	}
	// Events this build cannot decode are counted and skipped, as the projections skip them.
	dec := eventstore.NewDecoder(eventstore.DecodeOptions{Undecodable: func(eventstore.Envelope, error) error {
		rep.Skipped++
		return nil
	}})
	errStop := errors.New("stop")
	err := readAll(ctx, log, 0, progress, func(env eventstore.Envelope) error {
		if env.Position > upTo {
			return errStop
		}
		c, whole, err := dec.Add(env)
		if err != nil || !whole {
			return err
		}
		if err := pending.take(c.Position, false); err != nil {
			return err
		}
		for _, d := range c.Events {
			rep.Events++
			if d.Event != nil {
				ms.Apply(d.Envelope, d.Event)
			}
		}
		ms.Position = c.Position
		return nil
	})
	stopped := errors.Is(err, errStop)
	if err != nil && !stopped {
		return rep, fmt.Errorf("rebuild the read models: %w", err)
	}
	if pos, open := dec.Open(); open {
		return rep, fmt.Errorf("rebuild the read models: commit %d read without its last event: %w", pos, eventstore.ErrBrokenCommit)
	}
	for _, c := range pending.checks {
		if !stopped && c.Position > ms.Position && c.Problem == "" {
			c.Problem = fmt.Sprintf("the server reports position %d, beyond the end of the log it serves (%d)", c.Position, ms.Position)
		}
	}
	if err := pending.take(0, true); err != nil {
		return rep, err
	}
	return rep, nil
}

// checkReported starts a report with one check per model the server reported and one per
// model of this build it did not, each with the problems seen before any rebuilding. It
// answers too the checks that wait for a rebuilt digest: those of models both sides know.
func checkReported(ms *projections.Models, reported []projections.ModelStatus) (ModelsReport, *digests) {
	var rep ModelsReport
	reportedNames := map[string]bool{}
	for _, st := range reported {
		c := ModelCheck{Name: st.Name, Position: st.Position, Reported: st.Digest}
		m, err := ms.Model(st.Name)
		switch {
		case err != nil:
			c.Problem = "this build has no such model"
		case st.Error != "":
			c.Problem = "the server could not report it: " + st.Error
		case st.Version != m.Version():
			c.Problem = fmt.Sprintf("the server folds it with code version %d, this build with %d", st.Version, m.Version())
		}
		reportedNames[st.Name] = true
		rep.Models = append(rep.Models, c)
	}
	for _, name := range projections.ModelNames {
		if !reportedNames[name] {
			rep.Models = append(rep.Models, ModelCheck{Name: name, Problem: "the server does not report it"})
		}
	}
	// Pointers into rep.Models, which is complete: nothing appends to it any more.
	pending := &digests{ms: ms}
	for i := range rep.Models {
		c := &rep.Models[i]
		if _, err := ms.Model(c.Name); err != nil || !reportedNames[c.Name] {
			continue
		}
		pending.checks = append(pending.checks, c)
	}
	slices.SortStableFunc(pending.checks, func(a, b *ModelCheck) int { return cmp.Compare(a.Position, b.Position) })
	return rep, pending
}

// digests are the checks whose rebuilt digest is still to take, in position order, as the
// models in ms are rebuilt.
type digests struct {
	ms     *projections.Models
	checks []*ModelCheck
}

// take records the rebuilt digest of every pending check whose position is below next (of
// all of them when all): the models stand where the server reported them, before the
// commit at next.
func (d *digests) take(next uint64, all bool) error {
	for len(d.checks) > 0 && (all || d.checks[0].Position < next) {
		c := d.checks[0]
		d.checks = d.checks[1:]
		digest, err := d.ms.Digest(c.Name)
		if err != nil {
			return err
		}
		c.Rebuilt = digest
		if c.Problem == "" && c.Rebuilt != c.Reported {
			c.Problem = "the rebuilt model's digest is not the one the server reports"
		}
	}
	return nil
}
