package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/einvoice/spaceorders/eventstore"
)

// CheckOptions tune CheckStore and CheckExport.
type CheckOptions struct {
	// Expect is a digest recorded earlier for a position, checked too when given.
	Expect *Expect
	// Keys are the public keys checkpoints are verified with. Never take them from the log
	// under test: whoever rewrote it could have signed with a key of their own. None: the
	// checkpoints are counted as unchecked.
	Keys []ed25519.PublicKey
	// Progress hears the read of a store.
	Progress Progress
}

// CheckResult is everything a full check of a log found.
type CheckResult struct {
	// Report is the digest and stream count (when no Break stopped the chain check).
	Report Report `json:"report"`
	// Break is the first place where a hash chain, the commit shape or the order of the log
	// does not hold (nil: none).
	Break *Break `json:"break,omitempty"`
	// Damage names every gap in positions (dense logs) and stream versions (nil: none).
	Damage *Damage `json:"damage,omitempty"`
	// Checkpoints says which signed checkpoints held, and the first that did not.
	Checkpoints CheckpointReport `json:"checkpoints"`
}

// Err is nil for an intact log, else every finding joined.
func (r CheckResult) Err() error {
	var errs []error
	if r.Damage != nil {
		errs = append(errs, r.Damage)
	}
	if r.Break != nil {
		errs = append(errs, r.Break)
	}
	if r.Checkpoints.Failure != nil {
		errs = append(errs, r.Checkpoints.Failure)
	}
	return errors.Join(errs...)
}

// logCheck runs the chain Verifier, the GapFinder and the checkpoint checker over one read.
type logCheck struct {
	v    *Verifier
	gaps *GapFinder
	cps  *checkpointChecker
}

func newLogCheck(dense bool, opts CheckOptions) *logCheck {
	return &logCheck{v: NewVerifier(opts.Expect), gaps: NewGapFinder(dense), cps: newCheckpointChecker(opts.Keys)}
}

func (l *logCheck) add(env eventstore.Envelope, line int) {
	l.gaps.AddEvent(env)
	if b := l.v.Add(env, line); b != nil {
		// Past a break the digest no longer follows the log: later checkpoints cannot be judged.
		if IsCheckpoint(env) {
			l.cps.report.Unchecked++
		}
		return
	}
	if IsCheckpoint(env) {
		l.cps.check(env, placeOf(env, line), l.v.dig.events-1)
	}
	if env.LastInCommit() {
		l.cps.commitEnd(l.v.dig.events, env.Position, l.v.dig.sum)
	}
}

func (l *logCheck) finish() CheckResult {
	var r CheckResult
	r.Report, r.Break = l.v.Finish()
	r.Damage = l.gaps.Finish()
	r.Checkpoints = l.cps.report
	return r
}

// CheckStore reads the whole log of store once and checks everything: the hash chains and
// the log digest (as VerifyStore), every gap in positions (when the store's positions are
// dense) and stream versions, and every signed checkpoint against the keys. The error is
// only for a read that failed; what was found is in the result (Err).
func CheckStore(ctx context.Context, store eventstore.Store, opts CheckOptions) (CheckResult, error) {
	l := newLogCheck(eventstore.HasDensePositions(store), opts)
	head, err := store.Head(ctx)
	if err != nil {
		return CheckResult{}, fmt.Errorf("head: %w", err)
	}
	err = readAll(ctx, store, 0, opts.Progress, func(env eventstore.Envelope) error {
		l.add(env, 0)
		return nil
	})
	if err != nil {
		return CheckResult{}, err
	}
	l.gaps.End(head)
	if err := l.gaps.attribute(ctx, store); err != nil {
		return CheckResult{}, err
	}
	return l.finish(), nil
}

// CheckExport checks an exported log as CheckStore checks a store, and its trailer (as
// VerifyExport). Positions are checked for gaps when the trailer says the source's were
// dense. The error is only for a file that cannot be read.
func CheckExport(r io.Reader, opts CheckOptions) (CheckResult, error) {
	l := newLogCheck(false, opts)
	trailer, err := ReadExport(r, func(env eventstore.Envelope, line int) error {
		l.add(env, line)
		return nil
	})
	var b *Break
	if errors.As(err, &b) {
		res := l.finish()
		res.Break = b
		return res, nil
	}
	if err != nil {
		return CheckResult{}, err
	}
	l.gaps.dense = trailer != nil && trailer.DensePositions
	res := l.finish()
	if res.Break == nil {
		if err := checkTrailer(trailer, l.v); err != nil {
			errors.As(err, &res.Break)
		}
	}
	return res, nil
}
