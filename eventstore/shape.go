package eventstore

import "context"

// CommitHead is where a commit sits in the log, without its events: all that a check of the
// log's shape (every position present, every stream's versions contiguous) needs.
type CommitHead struct {
	Position     uint64
	Stream       string
	FirstVersion uint64 // the stream version of the commit's first event
	Count        int    // how many events the commit holds
}

// LastVersion is the stream version of the commit's last event.
func (c CommitHead) LastVersion() uint64 { return c.FirstVersion + uint64(max(c.Count, 1)) - 1 }

// CommitScanner is a Store that can list its commits without reading their payloads, much
// faster than ReadAll for a check of the log's shape. It is optional.
type CommitScanner interface {
	// ScanCommits calls fn for every commit with Position > after up to the head the log
	// had when the scan began, in global order.
	ScanCommits(ctx context.Context, after uint64, fn func(CommitHead) error) error
}

// DensePositioner is a Store that says whether its positions are dense. Whether they are
// is a backend's fact, not the contract's: on JetStream every sequence from 1 to the head
// holds one commit, so a missing one is damage; KurrentDB's positions are log offsets, and
// there damage shows only as a missing stream version, a broken hash chain or a signed
// checkpoint that does not verify. A Store that does not implement it is not dense.
type DensePositioner interface {
	// DensePositions reports whether every position from 1 to Head holds exactly one commit.
	DensePositions() bool
}

// HasDensePositions reports whether s says its positions are dense.
func HasDensePositions(s Store) bool {
	d, ok := s.(DensePositioner)
	return ok && d.DensePositions()
}

// LogCheckpointType is the type of the signed checkpoints of the log head that orderd
// appends to the log itself (handlers/checkpoint): not a domain event, so read models and
// other followers pass over it.
const LogCheckpointType = "LogCheckpointSigned"

// CommitCounter is a Store whose index counts each stream's commits apart from the commits
// themselves. After damage the two can differ: a stream whose index counts more commits
// than can be read is the one a lost commit belonged to, even when it was the stream's
// last (which no version gap shows). It is optional.
type CommitCounter interface {
	// CommitCounts is how many commits the index counts for each stream.
	CommitCounts(ctx context.Context) (map[string]uint64, error)
}
