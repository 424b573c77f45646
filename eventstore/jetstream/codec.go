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
	// hdrFormat "2": each event's identity and metadata in an Es-Event header, one per
	// event in order, and the body the events' payloads back to back, raw. A reader then
	// decodes each payload once (its consumer does) and the store copies nothing. Without
	// it, the body is the first format's JSON document {"events":[...]}: logs written
	// before stay readable.
	hdrFormat = "Es-Format"
	hdrEvent  = "Es-Event"
	format2   = "2"
)

// commitMsg is the message of a commit whose first event gets stream version first.
func commitMsg(subject string, first uint64, events []eventstore.EventData) *nats.Msg {
	size := 0
	for _, ev := range events {
		size += len(ev.Payload)
	}
	body := make([]byte, 0, size)
	h := make(nats.Header, 5)
	heads := make([]string, len(events))
	for i, ev := range events {
		p := bytes.TrimSpace(ev.Payload)
		heads[i] = eventHead(ev, len(p))
		body = append(body, p...)
	}
	last := first + uint64(len(events)) - 1
	h[hdrFirstVersion] = []string{strconv.FormatUint(first, 10)}
	h[hdrLastVersion] = []string{strconv.FormatUint(last, 10)}
	h[hdrCount] = []string{strconv.Itoa(len(events))}
	h[hdrFormat] = []string{format2}
	h[hdrEvent] = heads
	return &nats.Msg{Subject: subject, Data: body, Header: h}
}

// eventHead is an event's Es-Event header: id, schema version, payload size, time, then
// type and metadata as Go-quoted strings (no CR or LF can reach the header), space separated.
func eventHead(ev eventstore.EventData, size int) string {
	m := ev.Metadata
	b := make([]byte, 0, 128+len(ev.Type)+len(m.CorrelationID)+len(m.CausationID)+len(m.Actor)+len(m.Channel)+len(m.PrevHash))
	b = append(b, ev.ID.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(ev.SchemaVersion), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, ' ')
	if m.OccurredAt.IsZero() {
		b = append(b, '-')
	} else {
		b = m.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	}
	for _, s := range [...]string{ev.Type, m.CorrelationID, m.CausationID, m.Actor, m.Channel, m.PrevHash} {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, s)
	}
	return string(b)
}

// parseHead reads an Es-Event header into env and answers the payload's size.
func parseHead(head string, env *eventstore.Envelope) (int, error) {
	bad := func(what string) (int, error) { return 0, fmt.Errorf("event header %q: bad %s", head, what) }
	id, rest, _ := strings.Cut(head, " ")
	var err error
	if env.ID, err = uuid.Parse(id); err != nil {
		return bad("id")
	}
	sv, rest, _ := strings.Cut(rest, " ")
	if env.SchemaVersion, err = strconv.Atoi(sv); err != nil {
		return bad("schema version")
	}
	sz, rest, _ := strings.Cut(rest, " ")
	size, err := strconv.Atoi(sz)
	if err != nil || size < 0 {
		return bad("size")
	}
	at, rest, _ := strings.Cut(rest, " ")
	env.Metadata.OccurredAt = time.Time{}
	if at != "-" {
		if env.Metadata.OccurredAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return bad("time")
		}
	}
	for _, dst := range [...]*string{&env.Type, &env.Metadata.CorrelationID, &env.Metadata.CausationID,
		&env.Metadata.Actor, &env.Metadata.Channel, &env.Metadata.PrevHash} {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return bad("string")
		}
		if *dst, err = strconv.Unquote(q); err != nil {
			return bad("string")
		}
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	if rest != "" {
		return bad("ending")
	}
	return size, nil
}

// storedEvent is one event inside a first-format commit message's JSON body.
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

// encodeCommitV1 writes the first format's body, as the store wrote it before format 2
// (kept to test that such logs stay readable). It writes the body by hand so that each
// payload is kept byte for byte: json.Marshal would compact it and escape <, > and &.
func encodeCommitV1(events []eventstore.EventData) ([]byte, error) {
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

// decodeCommit turns one commit message into its envelopes. Their payloads are slices of
// data, which must not change afterwards.
func decodeCommit(stream string, seq uint64, ts time.Time, h nats.Header, data []byte, dst []eventstore.Envelope) ([]eventstore.Envelope, error) {
	first, err := strconv.ParseUint(h.Get(hdrFirstVersion), 10, 64)
	if err != nil {
		return dst, fmt.Errorf("message %d without %s header: %w", seq, hdrFirstVersion, err)
	}
	if h.Get(hdrFormat) != format2 {
		return decodeCommitV1(stream, seq, ts, first, data, dst)
	}
	heads := h[hdrEvent]
	if len(heads) == 0 {
		return dst, fmt.Errorf("message %d has no %s header", seq, hdrEvent)
	}
	off := 0
	for i, head := range heads {
		env := eventstore.Envelope{Stream: stream, StreamVersion: first + uint64(i), Position: seq,
			Index: i, Count: len(heads), RecordedAt: ts}
		size, err := parseHead(head, &env)
		if err != nil {
			return dst, fmt.Errorf("decode message %d: %w", seq, err)
		}
		if size > len(data)-off {
			return dst, fmt.Errorf("decode message %d: event %d runs past the body", seq, i)
		}
		env.Payload = json.RawMessage(data[off : off+size : off+size])
		off += size
		dst = append(dst, env)
	}
	if off != len(data) {
		return dst, fmt.Errorf("decode message %d: %d bytes of body after its events", seq, len(data)-off)
	}
	return dst, nil
}

// decodeCommitV1 decodes a first-format body.
func decodeCommitV1(stream string, seq uint64, ts time.Time, first uint64, data []byte, dst []eventstore.Envelope) ([]eventstore.Envelope, error) {
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

// commitSize is the message's body and headers in bytes, as the server counts them.
func commitSize(m *nats.Msg) int {
	n := len(m.Data) + 12 // "NATS/1.0\r\n" and the final "\r\n"
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n
}
