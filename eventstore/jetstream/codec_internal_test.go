package jetstream

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
)

// Whatever the strings hold (quotes, line breaks, spaces, non-ASCII, nothing), an event's
// header reads back as written, and payloads come back byte for byte, trimmed.
func TestFormat2RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 23, 59, 58, 123456789, time.UTC)
	events := []eventstore.EventData{
		{ID: uuid.New(), Type: "Odd \"type\"\r\nwith: spaces", SchemaVersion: 3, Payload: json.RawMessage(" {\"a\": \"<&>\"}\n"),
			Metadata: eventstore.Metadata{CorrelationID: "c 1", CausationID: "\\x", Actor: "attività", Channel: "", PrevHash: "ab", OccurredAt: at}},
		{ID: uuid.New(), Type: "Plain", SchemaVersion: 1, Payload: json.RawMessage(`[]`)},
		{ID: uuid.New(), Type: "Last", SchemaVersion: 1, Payload: json.RawMessage(`"x"`)},
	}
	m := commitMsg("events.order.x", 7, events)
	got, err := decodeCommit("order-x", 42, at, m.Header, m.Data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("%d envelopes, want %d", len(got), len(events))
	}
	for i, ev := range events {
		want := eventstore.Envelope{ID: ev.ID, Stream: "order-x", Type: ev.Type, SchemaVersion: ev.SchemaVersion,
			StreamVersion: 7 + uint64(i), Position: 42, Index: i, Count: 3, RecordedAt: at,
			Payload: json.RawMessage(trim(ev.Payload)), Metadata: ev.Metadata}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
	// A damaged message is refused, not half read.
	short := m.Data[:len(m.Data)-1]
	if _, err := decodeCommit("order-x", 42, at, m.Header, short, nil); err == nil {
		t.Error("a body shorter than its events was accepted")
	}
}

func trim(b []byte) string {
	var v json.RawMessage
	_ = json.Unmarshal(b, &v) // keeps the bytes between the first and last non-space
	return string(v)
}

// A log written in the first format ({"events":[...]} bodies) stays readable by every reader,
// and a stream goes on in the new format after it.
func TestFirstFormatLogsStayReadable(t *testing.T) {
	e, err := StartEmbedded(EmbeddedConfig{Dir: t.TempDir(), RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := t.Context()
	s, err := Open(ctx, e.Conn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stream := eventstore.StreamName("order", uuid.New())
	subject, _ := s.subjectOf(stream)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	old := []eventstore.EventData{
		{ID: uuid.New(), Type: "Old", SchemaVersion: 1, Payload: json.RawMessage(`{"n":0}`),
			Metadata: eventstore.Metadata{CorrelationID: "c", Actor: "a", OccurredAt: at}},
		{ID: uuid.New(), Type: "Old", SchemaVersion: 1, Payload: json.RawMessage(`{"n":1}`)},
	}
	old[1].Metadata.PrevHash = eventstore.Hash(stream, 0, old[0])
	// Written as the store wrote commits before format 2.
	body, err := encodeCommitV1(old)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	m.Header.Set(hdrFirstVersion, "0")
	m.Header.Set(hdrLastVersion, "1")
	m.Header.Set(hdrCount, "2")
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID(commitID(stream, old)),
		jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		t.Fatal(err)
	}
	next := eventstore.EventData{ID: uuid.New(), Type: "New", SchemaVersion: 2, Payload: json.RawMessage(`{"n":2}`),
		Metadata: eventstore.Metadata{PrevHash: eventstore.Hash(stream, 1, old[1])}}
	if _, err := s.Append(ctx, stream, eventstore.Exact(1), next); err != nil {
		t.Fatal(err)
	}
	all := append(old, next)

	check := func(how string, got []eventstore.Envelope) {
		t.Helper()
		if len(got) != len(all) {
			t.Fatalf("%s: %d events, want %d", how, len(got), len(all))
		}
		prev := ""
		for i, env := range got {
			ev := all[i]
			if env.ID != ev.ID || env.Type != ev.Type || env.SchemaVersion != ev.SchemaVersion ||
				string(env.Payload) != string(ev.Payload) || env.Metadata != ev.Metadata || env.StreamVersion != uint64(i) {
				t.Errorf("%s: event %d is %+v, want %+v", how, i, env, ev)
			}
			if env.Metadata.PrevHash != prev {
				t.Errorf("%s: event %d does not chain", how, i)
			}
			prev = eventstore.HashEnvelope(env)
		}
	}
	got, err := s.ReadStream(ctx, stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	check("ReadStream", got)
	if got, err = s.ReadAll(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	check("ReadAll", got)
	got = nil
	sctx, cancel := context.WithCancel(ctx)
	err = s.Subscribe(sctx, 0, func(env eventstore.Envelope) error {
		got = append(got, env)
		if len(got) == len(all) {
			cancel()
		}
		return nil
	})
	if sctx.Err() == nil {
		t.Fatal(err)
	}
	check("Subscribe", got)
	if st, err := s.lastState(ctx, subject); err != nil || st.version != 2 {
		t.Fatalf("the stream's state after both formats: %+v, %v", st, err)
	}
}
