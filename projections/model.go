package projections

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// Model is a read model: a pure fold of domain events. Apply never does I/O and never reads
// the clock, so two processes folding the same log hold the same state (and digest).
// Time-dependent figures (ages, statuses, percentages) are computed by the queries, from a
// now they are given.
type Model interface {
	// Name is the model's stable name: the snapshot file and the status report use it.
	Name() string
	// Version is the fold's code version: a snapshot of another version is discarded and the
	// model rebuilt from zero. Bump it whenever Apply or the state's shape changes.
	Version() int
	// Apply folds one event. env carries the stream (the aggregate id) and the position.
	Apply(env eventstore.Envelope, ev domain.Event)
	// MarshalState is the canonical encoding of the state: the same state gives the same bytes.
	MarshalState() ([]byte, error)
	// UnmarshalState replaces the state with one MarshalState wrote.
	UnmarshalState([]byte) error
}

// Model names.
const (
	QuotaName   = "quota"
	ExpiryName  = "expiry"
	PendingName = "pending-payment"
)

// ModelNames lists every model, in the order the runner feeds them.
var ModelNames = []string{QuotaName, ExpiryName, PendingName, ListsName}

// ErrUnknownModel: no model has that name.
var ErrUnknownModel = errors.New("projections: unknown model")

func newModel(name string) (Model, error) {
	switch name {
	case QuotaName:
		return NewQuotaModel(), nil
	case ExpiryName:
		return NewExpiryModel(), nil
	case PendingName:
		return NewPendingModel(), nil
	case ListsName:
		return NewListsModel(), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownModel, name)
}

// Digest is the SHA-256 (hex) of the model's canonical state.
func Digest(m Model) (string, error) {
	b, err := m.MarshalState()
	if err != nil {
		return "", fmt.Errorf("digest %s: %w", m.Name(), err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// streamID is the aggregate id of a "<category>-<uuid>" stream; events such as SpaceAdded
// or OrderCancelled name their aggregate only through the stream.
func streamID(stream string) (uuid.UUID, bool) {
	i := strings.IndexByte(stream, '-')
	if i < 0 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(stream[i+1:])
	return id, err == nil
}
