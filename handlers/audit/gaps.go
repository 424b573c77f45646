package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/einvoice/spaceorders/eventstore"
)

// GapKind says what a Gap is missing.
type GapKind string

const (
	// MissingPositions: positions of a dense log (JetStream) that hold no commit.
	MissingPositions GapKind = "missing-positions"
	// MissingVersions: a stream skips versions, or does not start at version 0.
	MissingVersions GapKind = "missing-versions"
	// OverlappingVersions: a commit repeats or goes back to versions its stream already had.
	OverlappingVersions GapKind = "overlapping-versions"
)

// Gap is one place where the log lacks what was written: found by the shape of the log
// alone (positions and stream versions), without reading a payload.
type Gap struct {
	Kind GapKind `json:"kind"`
	// FromPosition..ToPosition are the missing positions (MissingPositions), or the
	// positions of the commits on either side of the stream's gap (0: the stream's start).
	FromPosition uint64 `json:"fromPosition"`
	ToPosition   uint64 `json:"toPosition"`
	// Stream and FromVersion..ToVersion are the stream's missing (or repeated) versions.
	Stream      string `json:"stream,omitempty"`
	FromVersion uint64 `json:"fromVersion,omitempty"`
	ToVersion   uint64 `json:"toVersion,omitempty"`
	// Streams, for MissingPositions, are the streams whose version gaps span the missing
	// positions: the streams the lost commits most likely belonged to. Empty when no
	// stream's versions skip around them: the lost commits were the last of their streams.
	Streams []string `json:"streams,omitempty"`
}

func (g Gap) String() string {
	switch g.Kind {
	case MissingPositions:
		s := fmt.Sprintf("positions %d..%d hold no commit", g.FromPosition, g.ToPosition)
		if g.FromPosition == g.ToPosition {
			s = fmt.Sprintf("position %d holds no commit", g.FromPosition)
		}
		switch len(g.Streams) {
		case 0:
		case 1:
			return s + " (lost from " + g.Streams[0] + ")"
		default:
			return s + " (lost from one of " + strings.Join(g.Streams, ", ") + ")"
		}
		return s + " (the lost commit was the last of its stream, which neither its versions nor the store's index can name)"
	case MissingVersions:
		where := fmt.Sprintf("between positions %d and %d", g.FromPosition, g.ToPosition)
		if g.FromPosition == 0 {
			where = fmt.Sprintf("before position %d", g.ToPosition)
		}
		return fmt.Sprintf("%s: versions %d..%d missing, %s", g.Stream, g.FromVersion, g.ToVersion, where)
	default:
		return fmt.Sprintf("%s: versions %d..%d at position %d repeat what position %d holds",
			g.Stream, g.FromVersion, g.ToVersion, g.ToPosition, g.FromPosition)
	}
}

// Damage is a log with gaps: every gap found, in the order of the log.
type Damage struct {
	Gaps []Gap `json:"gaps"`
}

func (d *Damage) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d gap", len(d.Gaps))
	if len(d.Gaps) != 1 {
		b.WriteString("s")
	}
	b.WriteString(" in positions or stream versions")
	for i, g := range d.Gaps {
		if i == maxGapsInError {
			fmt.Fprintf(&b, "; and %d more", len(d.Gaps)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(g.String())
	}
	return b.String()
}

const maxGapsInError = 20

type streamEnd struct {
	last     uint64 // last version seen
	position uint64 // position of the commit holding it
	commits  uint64 // commits seen
}

// GapFinder checks the shape of a log fed to it commit by commit in global order: with
// dense positions, that every position from 1 on holds a commit; always, that every stream's
// versions run 0, 1, 2, ... without a hole or a repeat. Unlike the Verifier it does not stop
// at the first finding: it names every gap.
type GapFinder struct {
	dense   bool
	streams map[string]streamEnd
	last    uint64
	gaps    []Gap
	// short are the streams the store's index counts more commits for than were fed.
	short []string
}

// NewGapFinder starts a check; dense says whether every position must hold a commit.
func NewGapFinder(dense bool) *GapFinder {
	return &GapFinder{dense: dense, streams: map[string]streamEnd{}}
}

// AddCommit checks the next commit of the log.
func (f *GapFinder) AddCommit(c eventstore.CommitHead) {
	if c.Position > f.last+1 {
		f.gaps = append(f.gaps, Gap{Kind: MissingPositions, FromPosition: f.last + 1, ToPosition: c.Position - 1})
	}
	f.last = max(f.last, c.Position)
	end, seen := f.streams[c.Stream]
	next := uint64(0)
	if seen {
		next = end.last + 1
	}
	switch {
	case c.FirstVersion > next:
		g := Gap{Kind: MissingVersions, Stream: c.Stream, FromVersion: next, ToVersion: c.FirstVersion - 1, ToPosition: c.Position}
		if seen {
			g.FromPosition = end.position
		}
		f.gaps = append(f.gaps, g)
	case c.FirstVersion < next:
		f.gaps = append(f.gaps, Gap{Kind: OverlappingVersions, Stream: c.Stream, FromVersion: c.FirstVersion,
			ToVersion: c.LastVersion(), FromPosition: end.position, ToPosition: c.Position})
	}
	if !seen || c.LastVersion() > end.last {
		end.last, end.position = c.LastVersion(), c.Position
	}
	end.commits++
	f.streams[c.Stream] = end
}

// unattributed reports whether a run of missing positions has no stream to name yet.
func (f *GapFinder) unattributed() bool {
	for _, g := range f.Finish().gapsOrNil() {
		if g.Kind == MissingPositions && len(g.Streams) == 0 {
			return true
		}
	}
	return false
}

func (d *Damage) gapsOrNil() []Gap {
	if d == nil {
		return nil
	}
	return d.Gaps
}

// Compare takes the store's own count of commits per stream (eventstore.CommitCounter):
// a stream counted with more commits than were fed lost one, and names the missing
// positions no version gap accounts for.
func (f *GapFinder) Compare(counts map[string]uint64) {
	f.short = f.short[:0]
	for stream, n := range counts {
		if n > f.streams[stream].commits {
			f.short = append(f.short, stream)
		}
	}
	sort.Strings(f.short)
}

// attribute names, for gaps of missing positions that no version gap explains, the
// streams the index says lost a commit.
func (f *GapFinder) attribute(ctx context.Context, store eventstore.Store) error {
	cc, ok := store.(eventstore.CommitCounter)
	if !ok || !f.dense || !f.unattributed() {
		return nil
	}
	counts, err := cc.CommitCounts(ctx)
	if err != nil {
		return err
	}
	f.Compare(counts)
	return nil
}

// End tells the finder the log's head: on a dense log, positions after the last commit
// fed and up to head hold nothing (a store that keeps the sequence of a lost last commit).
func (f *GapFinder) End(head uint64) {
	if head > f.last {
		f.gaps = append(f.gaps, Gap{Kind: MissingPositions, FromPosition: f.last + 1, ToPosition: head})
		f.last = head
	}
}

// AddEvent feeds an event; only the first event of each commit counts.
func (f *GapFinder) AddEvent(env eventstore.Envelope) {
	if env.Index == 0 {
		f.AddCommit(eventstore.CommitHead{Position: env.Position, Stream: env.Stream, FirstVersion: env.StreamVersion, Count: env.Count})
	}
}

// Finish returns the gaps found, nil for none. Each run of missing positions names the
// streams whose version gaps span it.
func (f *GapFinder) Finish() *Damage {
	var gaps []Gap
	for _, g := range f.gaps {
		if g.Kind != MissingPositions || f.dense {
			gaps = append(gaps, g)
		}
	}
	if len(gaps) == 0 {
		return nil
	}
	for i, g := range gaps {
		if g.Kind != MissingPositions {
			continue
		}
		for _, v := range gaps {
			if v.Kind == MissingVersions && v.FromPosition < g.FromPosition && v.ToPosition > g.ToPosition {
				gaps[i].Streams = append(gaps[i].Streams, v.Stream)
			}
		}
		if len(gaps[i].Streams) == 0 {
			gaps[i].Streams = append(gaps[i].Streams, f.short...)
		}
		sort.Strings(gaps[i].Streams)
	}
	return &Damage{Gaps: gaps}
}

// Streams is how many streams were seen.
func (f *GapFinder) Streams() int { return len(f.streams) }

// ScanGaps checks the shape of the whole log of store: every position (when the store says
// its positions are dense) and every stream's versions. It reads only commit headers when
// the store can (eventstore.CommitScanner), else every event. It answers a *Damage naming
// every gap, nil for an intact shape, or the error that stopped the read.
func ScanGaps(ctx context.Context, store eventstore.Store) (streams int, err error) {
	f := NewGapFinder(eventstore.HasDensePositions(store))
	head, err := store.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("scan the log: %w", err)
	}
	if sc, ok := store.(eventstore.CommitScanner); ok {
		err = sc.ScanCommits(ctx, 0, func(c eventstore.CommitHead) error { f.AddCommit(c); return nil })
	} else {
		err = readAll(ctx, store, 0, nil, func(env eventstore.Envelope) error { f.AddEvent(env); return nil })
	}
	if err != nil {
		return 0, fmt.Errorf("scan the log: %w", err)
	}
	f.End(head)
	if err := f.attribute(ctx, store); err != nil {
		return 0, fmt.Errorf("scan the log: %w", err)
	}
	if d := f.Finish(); d != nil {
		return f.Streams(), d
	}
	return f.Streams(), nil
}
