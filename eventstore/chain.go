package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
)

// Hash is an event's link in its stream's hash chain: the SHA-256 of the event's identity,
// place, content and metadata, which holds the previous event's hash. Changing a byte of any
// event, removing one or reordering two breaks every link after it.
//
// The store's own recorded time is left out: it is assigned by the backend after the hash is
// computed, and a move between backends (export, import) keeps the chain valid.
func Hash(stream string, version uint64, e EventData) string {
	b, err := json.Marshal(struct {
		ID            uuid.UUID       `json:"id"`
		Stream        string          `json:"stream"`
		Version       uint64          `json:"version"`
		Type          string          `json:"type"`
		SchemaVersion int             `json:"schemaVersion"`
		Payload       json.RawMessage `json:"payload"` // re-compacted, so storage whitespace does not matter
		Metadata      Metadata        `json:"metadata"`
	}{e.ID, stream, version, e.Type, e.SchemaVersion, e.Payload, e.Metadata})
	if err != nil {
		// Payloads are validated JSON before they are stored; an invalid one cannot hash equal
		// to anything, so its link is visibly broken.
		return "invalid:" + fmt.Sprint(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// HashEnvelope is Hash of a stored event.
func HashEnvelope(env Envelope) string {
	return Hash(env.Stream, env.StreamVersion, EventData{
		ID: env.ID, Type: env.Type, SchemaVersion: env.SchemaVersion, Payload: env.Payload, Metadata: env.Metadata,
	})
}
