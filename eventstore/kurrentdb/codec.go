package kurrentdb

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/einvoice/spaceorders/eventstore"
)

// meta is the KurrentDB metadata of one event: ours, plus what the store needs to rebuild
// an Envelope, plus the two keys KurrentDB itself understands.
type meta struct {
	eventstore.Metadata
	// KurrentDB's $by_correlation_id projection and its UI read these two keys.
	SysCorrelationID string `json:"$correlationId,omitempty"`
	SysCausationID   string `json:"$causationId,omitempty"`

	SchemaVersion int `json:"schemaVersion"`
	// Index and Count place the event in its commit: $all readers see events, not commits,
	// and need to know when a commit is complete.
	Index int `json:"index"`
	Count int `json:"count"`
}

func encode(events []eventstore.EventData) ([]esdb.EventData, error) {
	out := make([]esdb.EventData, len(events))
	for i, ev := range events {
		m, err := json.Marshal(meta{
			Metadata:         ev.Metadata,
			SysCorrelationID: ev.Metadata.CorrelationID,
			SysCausationID:   ev.Metadata.CausationID,
			SchemaVersion:    ev.SchemaVersion,
			Index:            i,
			Count:            len(events),
		})
		if err != nil {
			return nil, fmt.Errorf("event %d (%s) metadata: %w", i, ev.Type, err)
		}
		out[i] = esdb.EventData{
			EventID:     ev.ID, // never zero (ValidateAppend): the client would put a random one
			EventType:   ev.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        ev.Payload,
			Metadata:    m,
		}
	}
	return out, nil
}

// ours tells whether an event of $all belongs to the store: not a system event, and in a
// stream named <prefix><category>-<uuid>. Anything else in the database is someone else's.
func (s *Store) ours(ev *esdb.RecordedEvent) bool {
	if strings.HasPrefix(ev.EventType, "$") {
		return false
	}
	name, ok := strings.CutPrefix(ev.StreamID, s.opts.StreamPrefix)
	if !ok {
		return false
	}
	_, _, err := eventstore.ParseStream(name)
	return err == nil
}

// decode turns a KurrentDB event into an Envelope whose Position is the event's own: the
// commit assembler gives every event of a commit its last event's position.
func (s *Store) decode(ev *esdb.RecordedEvent) (eventstore.Envelope, error) {
	var m meta
	if len(ev.UserMetadata) > 0 {
		if err := json.Unmarshal(ev.UserMetadata, &m); err != nil {
			return eventstore.Envelope{}, fmt.Errorf("kurrentdb: %s@%d metadata: %w", ev.StreamID, ev.EventNumber, err)
		}
	}
	if m.Count < 1 || m.Index < 0 || m.Index >= m.Count {
		// Written by another tool: all we can say is that the event is whole.
		m.Index, m.Count = 0, 1
	}
	if m.SchemaVersion < 1 {
		m.SchemaVersion = 1
	}
	return eventstore.Envelope{
		ID:            ev.EventID,
		Stream:        strings.TrimPrefix(ev.StreamID, s.opts.StreamPrefix),
		Type:          ev.EventType,
		SchemaVersion: m.SchemaVersion,
		StreamVersion: ev.EventNumber,
		Position:      ev.Position.Commit,
		Index:         m.Index,
		Count:         m.Count,
		RecordedAt:    ev.CreatedDate,
		Payload:       json.RawMessage(ev.Data),
		Metadata:      m.Metadata,
	}, nil
}

// size is an event's size as the server counts it against its MaxAppendSize (the
// server's Event.SizeOnDisk: data, metadata, type, and a small fixed part).
func size(d esdb.EventData) int {
	return len(d.Data) + len(d.Metadata) + 2*len(d.EventType) + 32
}
