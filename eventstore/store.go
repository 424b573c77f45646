// Package eventstore defines the event log every part of the product reads and writes:
// one Store interface, the envelope events travel in, and the codec between Go values and JSON.
// Backends live in subfolders (jetstream, kurrentdb); storetest is the suite they all pass.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Store is an append-only log of streams. Every backend keeps the same semantics:
//
//   - a stream holds dense versions 0..n-1;
//   - Append writes all its events or none (one commit), checked against an expected version;
//   - re-appending events whose ids are already the stream's latest commit is a no-op that
//     answers the original result;
//   - the global log orders commits by Position; the events of one commit share it and are
//     told apart by Envelope.Index.
//
// Positions. One position per commit, on every backend: each event of a commit carries the
// same Position, the one its Append answered (fresh or re-appended), and a reader (ReadAll,
// ReadStream, Subscribe) never hands on part of a commit: where the backend stores events
// one by one (KurrentDB gives each its own place in $all) it holds a commit back until its
// last event is read, answers the commit at that last event's position, and after a
// dropped subscription resumes after the last whole commit. Positions increase with the
// log and are otherwise opaque: `after` is 0 or a position the store answered; nothing may
// compute with one (no position-1, no position+1) or take them for dense. Whether they are
// dense is the backend's fact (JetStream sequences are, KurrentDB's log offsets are not),
// and a distance between two (a lag) is in the backend's units. A backend that can tell a
// position it never answered refuses it with ErrInvalidPosition.
type Store interface {
	// Append writes events to stream as one commit if the stream's state matches expected.
	Append(ctx context.Context, stream string, expected Expected, events ...EventData) (AppendResult, error)
	// ReadStream returns the stream's events with version >= from, oldest first.
	// A stream with no events answers ErrStreamNotFound; one deleted outside the product,
	// where the backend knows deletion, ErrStreamDeleted.
	ReadStream(ctx context.Context, stream string, from uint64) ([]Envelope, error)
	// ReadAll returns whole commits with Position > after, in global order, stopping once at
	// least limit events are collected (a commit is never split). An empty slice means the end.
	ReadAll(ctx context.Context, after uint64, limit int) ([]Envelope, error)
	// Subscribe calls fn for every event with Position > after, in global order: first the
	// events already stored, then new ones as they are appended. It returns when ctx ends
	// (with ctx's error) or when fn returns an error (with that error).
	Subscribe(ctx context.Context, after uint64, fn func(Envelope) error) error
	// Head is the Position of the last commit in the log (0 when empty).
	Head(ctx context.Context) (uint64, error)
	// Close releases the backend's resources.
	Close() error
}

// EventData is an event about to be appended.
type EventData struct {
	ID            uuid.UUID // set by the caller so that a retried append is recognised
	Type          string    // stable name, never the Go type name, e.g. "OrderConfirmed"
	SchemaVersion int       // version of the payload's shape, starting at 1
	Payload       json.RawMessage
	Metadata      Metadata
}

// Envelope is an event as stored in the log.
type Envelope struct {
	ID            uuid.UUID       `json:"eventId"`
	Stream        string          `json:"stream"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	StreamVersion uint64          `json:"streamVersion"`
	Position      uint64          `json:"position"` // the commit's position: the same for all its events
	Index         int             `json:"index"`    // the event's place within its commit
	Count         int             `json:"count"`    // how many events the commit holds
	RecordedAt    time.Time       `json:"recordedAt"`
	Payload       json.RawMessage `json:"payload"`
	Metadata      Metadata        `json:"metadata"`
}

// LastInCommit reports whether the event closes its commit: the point at which a reader
// that checkpoints by Position has seen the whole commit.
func (e Envelope) LastInCommit() bool { return e.Index == e.Count-1 }

// Metadata travels beside each payload; the domain never sees it.
type Metadata struct {
	CorrelationID string `json:"correlationId,omitempty"`
	CausationID   string `json:"causationId,omitempty"`
	Actor         string `json:"actor,omitempty"`
	Channel       string `json:"channel,omitempty"`
	// PrevHash is the SHA-256 (hex) of the stream's previous event: a hash chain that
	// makes a changed, removed or reordered event detectable.
	PrevHash string `json:"prevHash,omitempty"`
	// OccurredAt is the command's time as the handler saw it, the domain's "now".
	OccurredAt time.Time `json:"occurredAt,omitzero"`
}

// AppendResult says where a commit landed.
type AppendResult struct {
	// Version is the stream version of the commit's last event.
	Version uint64 `json:"version"`
	// Position is the commit's global position.
	Position uint64 `json:"position"`
}

// Expected is the state a stream must be in for an append to go ahead.
type Expected struct {
	kind    expectedKind
	version uint64
	// at is the position of the commit that ends at version (0: not given).
	at uint64
}

type expectedKind uint8

const (
	anyVersion expectedKind = iota
	noStream
	streamExists
	exactVersion
)

var (
	// Any appends whatever the stream's state.
	Any = Expected{kind: anyVersion}
	// NoStream appends only to a stream that has no events yet.
	NoStream = Expected{kind: noStream}
	// StreamExists appends only to a stream that has at least one event.
	StreamExists = Expected{kind: streamExists}
)

// Exact appends only if the stream's last event has version v.
func Exact(v uint64) Expected { return Expected{kind: exactVersion, version: v} }

// ExactAt is Exact(v) for a caller that knows the commit holding version v, the stream's
// last as the caller last saw it: at is that commit's Position, answered by the store
// together with v (an AppendResult, or a read's last Envelope). A backend that checks
// versions by position (JetStream expects a subject's last sequence) then needs no read to
// learn it, so the caller's cache of states is the only cache of versions. A stale position
// costs the backend a read, never a wrong append; a position paired with another version
// than its commit's last is a caller's bug the backend cannot see.
func ExactAt(v, at uint64) Expected { return Expected{kind: exactVersion, version: v, at: at} }

// IsAny, IsNoStream, IsStreamExists and Version let a backend inspect an Expected.
func (e Expected) IsAny() bool          { return e.kind == anyVersion }
func (e Expected) IsNoStream() bool     { return e.kind == noStream }
func (e Expected) IsStreamExists() bool { return e.kind == streamExists }

// Version returns the exact version and true, or false when e is not Exact.
func (e Expected) Version() (uint64, bool) { return e.version, e.kind == exactVersion }

// At returns the position of the expected version's commit and true when the caller gave
// it (ExactAt).
func (e Expected) At() (uint64, bool) { return e.at, e.kind == exactVersion && e.at != 0 }

// Check tells whether a stream whose last version is last (exists=false: no events) meets e.
// Backends that check versions themselves (rather than in the server) call it.
func (e Expected) Check(last uint64, exists bool) bool {
	switch e.kind {
	case noStream:
		return !exists
	case streamExists:
		return exists
	case exactVersion:
		return exists && last == e.version
	default:
		return true
	}
}

func (e Expected) String() string {
	switch e.kind {
	case noStream:
		return "no stream"
	case streamExists:
		return "stream exists"
	case exactVersion:
		return fmt.Sprintf("version %d", e.version)
	default:
		return "any"
	}
}

// MaxPayload is the largest payload one event may carry.
const MaxPayload = 1 << 20

// MaxEventsPerAppend bounds one commit.
const MaxEventsPerAppend = 1000

var (
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("eventstore: stream not found")
	// ErrInvalidAppend: the append was refused before anything was written (bad stream
	// name, empty type, payload not JSON or over MaxPayload, no events, or the whole commit
	// over the backend's own size limit).
	ErrInvalidAppend = errors.New("eventstore: invalid append")
	// ErrNoSpace: the store cannot write for lack of disk space, and the append was not
	// acknowledged. Writing may resume once space is freed; a retry with the same event
	// ids is safe.
	ErrNoSpace = errors.New("eventstore: no space left to write")
	// ErrStreamDeleted: the stream was deleted by an operator with the backend's own tools
	// (KurrentDB's hard delete); it can be neither read nor written again.
	ErrStreamDeleted = errors.New("eventstore: stream deleted")
	// ErrInvalidPosition: after is not a position this store answered.
	ErrInvalidPosition = errors.New("eventstore: not a position of this log")
)

// WrongVersionError is returned when the stream is not in the Expected state.
type WrongVersionError struct {
	Stream   string
	Expected Expected
	// Actual is the stream's last version; Exists is false when the stream has no events.
	Actual uint64
	Exists bool
}

func (e *WrongVersionError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = fmt.Sprintf("version %d", e.Actual)
	}
	return fmt.Sprintf("eventstore: %s: expected %s, found %s", e.Stream, e.Expected, actual)
}

// IsWrongVersion reports whether err is (or wraps) a *WrongVersionError.
func IsWrongVersion(err error) bool {
	var w *WrongVersionError
	return errors.As(err, &w)
}

var streamName = regexp.MustCompile(`^[a-z][a-z0-9]*-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// StreamName builds the name of an aggregate's stream: "<category>-<uuid>".
func StreamName(category string, id uuid.UUID) string { return category + "-" + id.String() }

// ParseStream splits a stream name into its category and id.
func ParseStream(stream string) (category string, id uuid.UUID, err error) {
	if !streamName.MatchString(stream) {
		return "", uuid.Nil, fmt.Errorf("%w: stream name %q is not <category>-<uuid>", ErrInvalidAppend, stream)
	}
	i := len(stream) - 36
	return stream[:i-1], uuid.MustParse(stream[i:]), nil
}

// ValidateAppend checks an append before any backend touches storage, so that a refused
// append writes nothing.
func ValidateAppend(stream string, events []EventData) error {
	if _, _, err := ParseStream(stream); err != nil {
		return err
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events", ErrInvalidAppend)
	}
	if len(events) > MaxEventsPerAppend {
		return fmt.Errorf("%w: %d events in one append, at most %d", ErrInvalidAppend, len(events), MaxEventsPerAppend)
	}
	for i, ev := range events {
		switch {
		case ev.ID == uuid.Nil:
			return fmt.Errorf("%w: event %d has no id", ErrInvalidAppend, i)
		case ev.Type == "":
			return fmt.Errorf("%w: event %d has an empty type", ErrInvalidAppend, i)
		case ev.SchemaVersion < 1:
			return fmt.Errorf("%w: event %d (%s) has schema version %d", ErrInvalidAppend, i, ev.Type, ev.SchemaVersion)
		case len(ev.Payload) > MaxPayload:
			return fmt.Errorf("%w: event %d (%s) payload is %d bytes, over %d", ErrInvalidAppend, i, ev.Type, len(ev.Payload), MaxPayload)
		case !json.Valid(ev.Payload):
			return fmt.Errorf("%w: event %d (%s) payload is not JSON", ErrInvalidAppend, i, ev.Type)
		}
	}
	return nil
}
