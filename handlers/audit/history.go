package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
)

// Entry is one line of a stream's timeline.
type Entry struct {
	Version       uint64          `json:"version"`
	Position      uint64          `json:"position"`
	RecordedAt    time.Time       `json:"recordedAt"`
	OccurredAt    time.Time       `json:"occurredAt,omitzero"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schemaVersion"`
	EventID       uuid.UUID       `json:"eventId"`
	Actor         string          `json:"actor,omitempty"`
	Channel       string          `json:"channel,omitempty"`
	CorrelationID string          `json:"correlationId,omitempty"`
	CausationID   string          `json:"causationId,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	// Hash is the event's link in its stream's chain; PrevHash the link it points back to.
	Hash     string `json:"hash"`
	PrevHash string `json:"prevHash,omitempty"`
}

// Timeline is a stream's history, with whether its hash chain holds.
type Timeline struct {
	Stream  string  `json:"stream"`
	Entries []Entry `json:"events"`
	// ChainIntact is false when a prevHash does not match; Break then says where.
	ChainIntact bool   `json:"chainIntact"`
	Break       *Break `json:"break,omitempty"`
}

// ResolveStream turns what a user typed into a stream name: a stream name as is, or a
// bare uuid, looked up as an order and then as a subscription.
func ResolveStream(ctx context.Context, store eventstore.Store, arg string, categories ...string) (string, error) {
	if _, _, err := eventstore.ParseStream(arg); err == nil {
		return arg, nil
	}
	id, err := uuid.Parse(arg)
	if err != nil {
		return "", fmt.Errorf("%q is neither a stream name (<category>-<uuid>) nor a uuid", arg)
	}
	for _, c := range categories {
		s := eventstore.StreamName(c, id)
		_, err := store.ReadStream(ctx, s, 0)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			return "", err
		}
	}
	return "", fmt.Errorf("no stream %s for %s: %w", strings.Join(categories, " or "), id, eventstore.ErrStreamNotFound)
}

// History reads a stream's timeline and checks its chain on the way.
func History(ctx context.Context, store eventstore.Store, stream string) (Timeline, error) {
	envs, err := store.ReadStream(ctx, stream, 0)
	if err != nil {
		return Timeline{}, fmt.Errorf("history of %s: %w", stream, err)
	}
	return timeline(stream, envs), nil
}

func timeline(stream string, envs []eventstore.Envelope) Timeline {
	t := Timeline{Stream: stream, Entries: make([]Entry, 0, len(envs)), ChainIntact: true}
	prev, prevPlace := "", (*Place)(nil)
	for i, env := range envs {
		h := eventstore.HashEnvelope(env)
		md := env.Metadata
		t.Entries = append(t.Entries, Entry{
			Version: env.StreamVersion, Position: env.Position, RecordedAt: env.RecordedAt, OccurredAt: md.OccurredAt,
			Type: env.Type, SchemaVersion: env.SchemaVersion, EventID: env.ID, Actor: md.Actor, Channel: md.Channel,
			CorrelationID: md.CorrelationID, CausationID: md.CausationID, Payload: env.Payload, Hash: h, PrevHash: md.PrevHash,
		})
		if t.ChainIntact && (md.PrevHash != prev || env.StreamVersion != uint64(i)) {
			t.ChainIntact = false
			t.Break = &Break{Kind: BrokenLink, At: placeOf(env, 0), Prev: prevPlace,
				Detail: fmt.Sprintf("prevHash %s is not the hash %s of the event before it", short(md.PrevHash), short(prev))}
		}
		p := placeOf(env, 0)
		prev, prevPlace = h, &p
	}
	return t
}

// WriteTable writes the timeline for a person: one line per event (when, which event, who,
// which channel, correlation id), its payload last. Every line has every column, so the
// columns stay aligned down the whole table (a line with fewer cells ends a tabwriter
// column block, which is how the payload lines under each event once broke them).
func (t Timeline) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VER\tPOSITION\tRECORDED (UTC)\tEVENT\tACTOR\tCHANNEL\tCORRELATION\tPAYLOAD\n")
	for _, e := range t.Entries {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s v%d\t%s\t%s\t%s\t%s\n", e.Version, e.Position,
			e.RecordedAt.UTC().Format("2006-01-02 15:04:05.000"), e.Type, e.SchemaVersion,
			dash(e.Actor), dash(e.Channel), dash(e.CorrelationID), compact(e.Payload))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t.ChainIntact {
		_, err := fmt.Fprintf(w, "%s: %d events, hash chain intact\n", t.Stream, len(t.Entries))
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %d events, HASH CHAIN BROKEN: %v\n", t.Stream, len(t.Entries), t.Break)
	return err
}

// WriteJSON writes the timeline as one indented JSON document.
func (t Timeline) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// compact writes a payload on one line (json.Marshal of a RawMessage compacts it).
func compact(raw json.RawMessage) string {
	if b, err := json.Marshal(raw); err == nil {
		return string(b)
	}
	return string(raw)
}
