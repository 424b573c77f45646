// The full-disk recovery restarts JetStream inside the running server, and nats-server
// v2.15 re-enabling JetStream writes its API queues without a lock its clients' earlier
// requests took: the race detector reports the server's own fields, whatever this code
// does. So these tests are built without -race; .ci/run runs them in a step of their own
// (go test -run FullDisk ./handlers/app/ ./eventstore/jetstream/), and every other test
// of the tree runs under -race.

//go:build !race

package jetstream_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func bigEvent(t *testing.T) eventstore.EventData {
	t.Helper()
	pad := strings.Repeat("x", 16<<10)
	return eventstore.EventData{ID: uuid.New(), Type: "Filled", SchemaVersion: 1, Payload: []byte(`{"pad":"` + pad + `"}`)}
}

// A full disk: the append is refused at once with ErrNoSpace (not after the 5 s timeout
// of a publish the server never answers), the server's error is in the log, and once the
// space is freed writing resumes in the same process, with every acknowledged commit kept.
func TestAFullDiskAnswersNoSpaceAndWritingResumesWhenSpaceIsFreed(t *testing.T) {
	dir := jstest.SmallDisk(t, 8<<20)
	core, logs := observer.New(zapcore.WarnLevel)
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, Logger: zap.New(core),
		RecoverEvery: 50 * time.Millisecond, MinFreeBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s := open(t, e.Conn, jetstream.Options{Faults: e})
	ctx := t.Context()

	var acked []uuid.UUID
	appendOne := func() error {
		id := uuid.New()
		_, err := s.Append(ctx, eventstore.StreamName("order", id), eventstore.NoStream, bigEvent(t))
		if err == nil {
			acked = append(acked, id)
		}
		return err
	}
	for range 10 {
		if err := appendOne(); err != nil {
			t.Fatal(err)
		}
	}
	filler := jstest.Fill(t, dir)

	start := time.Now()
	err = appendOne()
	if !errors.Is(err, eventstore.ErrNoSpace) {
		t.Fatalf("append on a full disk: %v, want ErrNoSpace", err)
	}
	// The store's publish timeout is 5 s: a refusal that waited for it would take that long.
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the refusal took %s: it waited for an answer that never comes", d)
	}
	if e.WriteErr() == nil {
		t.Error("WriteErr is nil on a full disk")
	}
	// Later appends are refused at once, without touching the server.
	start = time.Now()
	if err := appendOne(); !errors.Is(err, eventstore.ErrNoSpace) || time.Since(start) > 4*time.Second {
		t.Errorf("second append: %v after %s", err, time.Since(start))
	}
	if logs.FilterMessageSnippet("no space left").Len() == 0 {
		t.Errorf("the server's write error is not in the log: %v", logs.All())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testwait.Check(t, "the server writing again after space was freed", e.WriteErr)
	for range 5 {
		if err := appendOne(); err != nil {
			t.Fatalf("append after space was freed: %v", err)
		}
	}
	for _, id := range acked {
		if _, err := s.ReadStream(ctx, eventstore.StreamName("order", id), 0); err != nil {
			t.Errorf("acknowledged commit of %s: %v", id, err)
		}
	}
	head, err := s.Head(ctx)
	if err != nil || head != uint64(len(acked)) {
		t.Errorf("head %d (%v), want %d: one position per acknowledged commit, none lost, none extra", head, err, len(acked))
	}
}
