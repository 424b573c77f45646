package audit

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/einvoice/spaceorders/eventstore"
)

// ImportReport says what Import did.
type ImportReport struct {
	// Commits and Events read from the export.
	Commits int `json:"commits"`
	Events  int `json:"events"`
	// Skipped commits were in the target already (a re-run import).
	Skipped int `json:"skipped"`
	// Source is the digest of the export; Target that of the whole target log afterwards.
	Source Digest `json:"source"`
	Target Digest `json:"target"`
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Progress hears the import; positions are the source's. Nil: silent.
	Progress Progress
	// Head is the source's head position, for the progress bar (0: unknown).
	Head uint64
	// VerifyProgress hears the verification read of the target afterwards.
	VerifyProgress Progress
}

// Import writes an exported log into store, commit by commit in the original order, with
// the original event ids, types, payloads and metadata, so that every stream, version,
// commit and hash chain is the same. Each commit is appended with the expected version it
// had (NoStream or Exact(version-1)); a commit already in the target with the same event
// ids is skipped, so an import that is run again, or after an interruption, is a no-op for
// what is there. The export's chains are checked as it is read and the import stops before
// a commit that breaks them. At the end the whole target log is read and its digest must be
// the export's: the target must hold nothing but this log.
func Import(ctx context.Context, store eventstore.Store, r io.Reader, opts ImportOptions) (ImportReport, error) {
	var rep ImportReport
	source, err := copyExport(ctx, store, r, opts, &rep)
	if err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	rep.Source = source
	got, err := VerifyStore(ctx, store, nil, opts.VerifyProgress)
	if err != nil {
		return rep, fmt.Errorf("import: verify the target: %w", err)
	}
	rep.Target = got.Digest
	if got.Digest.Sum != rep.Source.Sum || got.Digest.Events != rep.Source.Events {
		return rep, fmt.Errorf("import: the target's log digest %s (%d events) is not the export's %s (%d events): the target held other events, or lost some",
			got.Digest.Sum, got.Digest.Events, rep.Source.Sum, rep.Source.Events)
	}
	return rep, nil
}

// copyExport appends the export r holds to store commit by commit, checking its chains as
// it reads, and counts what it did in rep. It answers the export's digest, checked against
// its trailer.
func copyExport(ctx context.Context, store eventstore.Store, r io.Reader, opts ImportOptions, rep *ImportReport) (Digest, error) {
	progress := opts.Progress
	if progress == nil {
		progress = NoProgress{}
	}
	// A store answers a re-appended latest commit with its original place: an append that
	// lands at or before the head the target had at the start wrote nothing.
	head0, err := store.Head(ctx)
	if err != nil {
		return Digest{}, fmt.Errorf("target head: %w", err)
	}
	v := NewVerifier(nil)
	var commit []eventstore.Envelope
	flush := func() error {
		if len(commit) == 0 {
			return nil
		}
		skipped, err := appendCommit(ctx, store, commit, head0)
		if err != nil {
			return err
		}
		rep.Commits++
		rep.Events += len(commit)
		if skipped {
			rep.Skipped++
		}
		progress.Advance(commit[0].Position, len(commit))
		commit = commit[:0]
		return nil
	}
	progress.Start(opts.Head)
	trailer, err := ReadExport(r, func(env eventstore.Envelope, line int) error {
		if b := v.Add(env, line); b != nil {
			return b
		}
		// A commit ends at its last event (the verifier has checked the shape), which needs
		// no knowledge of how the source's positions run.
		commit = append(commit, env)
		if env.LastInCommit() {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	progress.Done()
	if err != nil {
		return Digest{}, err
	}
	if _, b := v.Finish(); b != nil {
		return Digest{}, b
	}
	if err := checkTrailer(trailer, v); err != nil {
		return Digest{}, err
	}
	return v.Digest(), nil
}

// appendCommit appends one exported commit as it was; skipped is true when the target
// already holds it.
func appendCommit(ctx context.Context, store eventstore.Store, commit []eventstore.Envelope, head0 uint64) (skipped bool, err error) {
	first := commit[0]
	expected := eventstore.NoStream
	if first.StreamVersion > 0 {
		expected = eventstore.Exact(first.StreamVersion - 1)
	}
	data := make([]eventstore.EventData, len(commit))
	for i, env := range commit {
		data[i] = eventstore.EventData{ID: env.ID, Type: env.Type, SchemaVersion: env.SchemaVersion, Payload: env.Payload, Metadata: env.Metadata}
	}
	res, err := store.Append(ctx, first.Stream, expected, data...)
	if err == nil {
		return res.Position <= head0, nil
	}
	if !eventstore.IsWrongVersion(err) {
		return false, fmt.Errorf("append %s version %d (position %d): %w", first.Stream, first.StreamVersion, first.Position, err)
	}
	// The stream is further on: it is a re-run if the target has these very events there.
	have, rerr := store.ReadStream(ctx, first.Stream, first.StreamVersion)
	if rerr != nil && !errors.Is(rerr, eventstore.ErrStreamNotFound) {
		return false, fmt.Errorf("append %s version %d: %w; and reading it back: %w", first.Stream, first.StreamVersion, err, rerr)
	}
	if len(have) < len(commit) {
		return false, fmt.Errorf("append %s version %d (position %d): %w", first.Stream, first.StreamVersion, first.Position, err)
	}
	for i, env := range commit {
		if have[i].ID != env.ID || have[i].StreamVersion != env.StreamVersion {
			return false, fmt.Errorf("the target's %s holds event %s at version %d where the export has %s: it is not this log",
				first.Stream, have[i].ID, have[i].StreamVersion, env.ID)
		}
	}
	return true, nil
}
