package jetstream_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// A stream made before deletes and purges were denied (or by hand) gets both denied when
// the store opens on it, and the server then refuses to delete or purge a commit: a gap in
// the positions can only be damage.
func TestOpenDeniesDeleteAndPurgeOnAnExistingStream(t *testing.T) {
	emb := startEmbedded(t, t.TempDir(), true)
	ctx := context.Background()
	js, err := natsjs.New(emb.Conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: natsjs.FileStorage}); err != nil {
		t.Fatal(err)
	}
	s := open(t, emb.Conn, jetstream.Options{})
	ev := eventstore.EventData{ID: uuid.New(), Type: "OrderOpened", SchemaVersion: 1, Payload: []byte(`{}`)}
	res, err := s.Append(ctx, eventstore.StreamName("order", uuid.New()), eventstore.NoStream, ev)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := st.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
		t.Fatalf("stream config after Open: deny delete %v, deny purge %v", cfg.DenyDelete, cfg.DenyPurge)
	}
	if err := st.DeleteMsg(ctx, res.Position); err == nil {
		t.Fatal("the server deleted a commit")
	}
	if err := st.Purge(ctx); err == nil {
		t.Fatal("the server purged the log")
	}
	if head, _ := s.Head(ctx); head != res.Position {
		t.Fatalf("head %d, want %d", head, res.Position)
	}
}
