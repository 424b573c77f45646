package jetstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/einvoice/spaceorders/eventstore"
)

// Headers of a commit message. The version headers let the append path learn a stream's
// state from the last message's headers alone, without decoding its body.
const (
	hdrFirstVersion = "Es-First-Version"
	hdrLastVersion  = "Es-Last-Version"
	hdrCount        = "Es-Count"
)

// storedEvent is one event inside a commit message's JSON body.
type storedEvent struct {
	ID            uuid.UUID           `json:"id"`
	Type          string              `json:"type"`
	SchemaVersion int                 `json:"schemaVersion"`
	Metadata      eventstore.Metadata `json:"metadata"`
	Payload       json.RawMessage     `json:"payload"`
}

type commitBody struct {
	Events []storedEvent `json:"events"`
}

// encodeCommit writes the body by hand so that each payload is kept byte for byte:
// json.Marshal would compact it and escape <, > and & inside its strings.
func encodeCommit(events []eventstore.EventData) ([]byte, error) {
	size := 16
	for _, ev := range events {
		size += len(ev.Payload) + 160
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteString(`{"events":[`)
	for i, ev := range events {
		if i > 0 {
			buf.WriteByte(',')
		}
		head, err := json.Marshal(storedEvent{ID: ev.ID, Type: ev.Type, SchemaVersion: ev.SchemaVersion, Metadata: ev.Metadata})
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", i, err)
		}
		// head ends with `,"payload":null}`: replace the null with the raw payload.
		head = bytes.TrimSuffix(head, []byte(`null}`))
		buf.Write(head)
		buf.Write(bytes.TrimSpace(ev.Payload))
		buf.WriteByte('}')
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// commitID is the commit's Nats-Msg-Id: a digest of the stream and its event ids, so that
// a retried append of the same commit is recognised by the server and by Append.
func commitID(stream string, events []eventstore.EventData) string {
	if len(events) == 1 {
		return stream + "/" + events[0].ID.String()
	}
	h := sha256.New()
	h.Write([]byte(stream))
	for _, ev := range events {
		h.Write(ev.ID[:])
	}
	return stream + "/" + hex.EncodeToString(h.Sum(nil)[:16])
}

// streamState is what Append needs to know about a stream: its last version and the
// sequence and id of its last commit message.
type streamState struct {
	exists  bool
	version uint64
	seq     uint64
	msgID   string
}

func (st streamState) result() eventstore.AppendResult {
	return eventstore.AppendResult{Version: st.version, Position: st.seq}
}

// stateFromHeaders reads a stream's state from the headers of its last message as a
// direct get returns them.
func stateFromHeaders(h nats.Header) (streamState, error) {
	seq, err := strconv.ParseUint(h.Get(nats.JSSequence), 10, 64)
	if err != nil {
		return streamState{}, fmt.Errorf("message without sequence header: %w", err)
	}
	v, err := strconv.ParseUint(h.Get(hdrLastVersion), 10, 64)
	if err != nil {
		return streamState{}, fmt.Errorf("message %d without %s header: %w", seq, hdrLastVersion, err)
	}
	return streamState{exists: true, version: v, seq: seq, msgID: h.Get(nats.MsgIdHdr)}, nil
}

// decodeCommit turns one commit message into its envelopes.
func decodeCommit(stream string, seq uint64, ts time.Time, h nats.Header, data []byte, dst []eventstore.Envelope) ([]eventstore.Envelope, error) {
	first, err := strconv.ParseUint(h.Get(hdrFirstVersion), 10, 64)
	if err != nil {
		return dst, fmt.Errorf("message %d without %s header: %w", seq, hdrFirstVersion, err)
	}
	var body commitBody
	if err := json.Unmarshal(data, &body); err != nil {
		return dst, fmt.Errorf("decode message %d: %w", seq, err)
	}
	n := len(body.Events)
	for i, ev := range body.Events {
		dst = append(dst, eventstore.Envelope{
			ID:            ev.ID,
			Stream:        stream,
			Type:          ev.Type,
			SchemaVersion: ev.SchemaVersion,
			StreamVersion: first + uint64(i),
			Position:      seq,
			Index:         i,
			Count:         n,
			RecordedAt:    ts,
			Payload:       ev.Payload,
			Metadata:      ev.Metadata,
		})
	}
	return dst, nil
}

// decodeDirect decodes a message answered by a direct get, whose headers carry the
// subject, sequence and time stamp.
func (s *Store) decodeDirect(m *nats.Msg, dst []eventstore.Envelope) ([]eventstore.Envelope, error) {
	seq, err := strconv.ParseUint(m.Header.Get(nats.JSSequence), 10, 64)
	if err != nil {
		return dst, fmt.Errorf("direct get answer without sequence: %w", err)
	}
	ts, err := time.Parse(time.RFC3339Nano, m.Header.Get(nats.JSTimeStamp))
	if err != nil {
		return dst, fmt.Errorf("message %d time stamp: %w", seq, err)
	}
	stream, err := s.streamOf(m.Header.Get(nats.JSSubject))
	if err != nil {
		return dst, fmt.Errorf("message %d: %w", seq, err)
	}
	return decodeCommit(stream, seq, ts, m.Header, m.Data, dst)
}

// subjectOf maps "<category>-<uuid>" to "<prefix>.<category>.<uuid>": one subject per
// stream, and a category is a subject token, so "<prefix>.order.>" reads a category.
func (s *Store) subjectOf(stream string) (string, error) {
	cat, id, err := eventstore.ParseStream(stream)
	if err != nil {
		return "", err
	}
	return s.prefix + "." + cat + "." + id.String(), nil
}

func (s *Store) streamOf(subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, s.prefix+".")
	if !ok {
		return "", fmt.Errorf("subject %q is outside %s.>", subject, s.prefix)
	}
	cat, id, ok := strings.Cut(rest, ".")
	if !ok {
		return "", fmt.Errorf("subject %q is not %s.<category>.<uuid>", subject, s.prefix)
	}
	return cat + "-" + id, nil
}
