package jetstream_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// The store keeps no versions of its own: the caller that decides on a state knows the
// commit it was built from, and an append that names it (ExactAt), or a new stream
// (NoStream), is one publish. An expectation without a position costs a read of the
// stream's last commit first, and so does a stale position, which the version then decides.
func TestAppendRoundTrips(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), true)
	s := open(t, e.Conn, jetstream.Options{})
	t.Cleanup(func() { s.Close(); e.Close() })
	stream := eventstore.StreamName("order", uuid.New())
	ev := func() eventstore.EventData {
		return eventstore.EventData{ID: uuid.New(), Type: "Happened", SchemaVersion: 1, Payload: []byte(`{}`)}
	}
	var last eventstore.AppendResult
	appendCounting := func(how string, exp eventstore.Expected, want uint64) {
		t.Helper()
		before := e.Conn.Stats().OutMsgs
		r, err := s.Append(t.Context(), stream, exp, ev())
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if sent := e.Conn.Stats().OutMsgs - before; sent != want {
			t.Errorf("%s: %d messages to the server, want %d", how, sent, want)
		}
		last = r
	}
	appendCounting("NoStream", eventstore.NoStream, 1)
	appendCounting("ExactAt", eventstore.ExactAt(last.Version, last.Position), 1)
	appendCounting("ExactAt", eventstore.ExactAt(last.Version, last.Position), 1)
	appendCounting("Exact without a position", eventstore.Exact(last.Version), 2)
	appendCounting("Any", eventstore.Any, 2)
	appendCounting("ExactAt with a stale position", eventstore.ExactAt(last.Version, last.Position-1), 3)
	if last.Version != 5 {
		t.Fatalf("last version %d, want 5", last.Version)
	}
}
