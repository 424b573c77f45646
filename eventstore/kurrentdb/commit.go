package kurrentdb

import (
	"errors"
	"fmt"

	"github.com/einvoice/spaceorders/eventstore"
)

// ErrBrokenCommit: the events of a commit are not whole and in order where the log holds
// them (the server writes an append's events together, so this is damage or another
// tool's doing), and the store refuses to pass them on as if they were.
var ErrBrokenCommit = errors.New("kurrentdb: a commit's events are not whole in the log")

// commits gathers the events of one read (of $all or of a stream) into whole commits.
// KurrentDB gives every event its own position; the store's rule is one position per
// commit, its last event's (the append's answer), so no event is handed on before its
// commit's last one is read. A commit still open when a read ends is held back.
type commits struct {
	open []eventstore.Envelope
	// tail is what to do with events that continue a commit begun before the read's
	// start: a stream read from a version inside a commit keeps them, a read of $all
	// after a position skips them (that commit is at or before the position).
	tail     bool
	begun    bool // an event has been taken (or skipped) since the read's start
	skipping bool // inside such a commit's tail, being skipped
}

// add takes the next event of the read; it answers a commit once its last event is in.
func (c *commits) add(env eventstore.Envelope) ([]eventstore.Envelope, error) {
	first := !c.begun
	c.begun = true
	if c.skipping && env.Index != 0 {
		c.skipping = !env.LastInCommit()
		return nil, nil
	}
	c.skipping = false
	if len(c.open) == 0 {
		if env.Index != 0 && first {
			if !c.tail {
				c.skipping = !env.LastInCommit()
				return nil, nil
			}
		} else if env.Index != 0 {
			return nil, fmt.Errorf("%w: %s version %d at %d is event #%d of %d, but no commit is open",
				ErrBrokenCommit, env.Stream, env.StreamVersion, env.Position, env.Index, env.Count)
		}
	} else if last := c.open[len(c.open)-1]; env.Stream != last.Stream || env.Index != last.Index+1 ||
		env.Count != last.Count || env.StreamVersion != last.StreamVersion+1 {
		return nil, fmt.Errorf("%w: %s version %d at %d (event #%d of %d) follows %s version %d (event #%d of %d)",
			ErrBrokenCommit, env.Stream, env.StreamVersion, env.Position, env.Index, env.Count,
			last.Stream, last.StreamVersion, last.Index, last.Count)
	}
	c.open = append(c.open, env)
	if !env.LastInCommit() {
		return nil, nil
	}
	done := c.open
	c.open = nil
	for i := range done {
		done[i].Position = env.Position
	}
	return done, nil
}

// pending tells whether a commit is open: its first events are read, its last is not.
func (c *commits) pending() bool { return len(c.open) > 0 }
