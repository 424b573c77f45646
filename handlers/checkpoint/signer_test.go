package checkpoint_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// appendEvents writes n single-event commits on fresh streams.
func appendEvents(t *testing.T, s eventstore.Store, n int) {
	t.Helper()
	for i := range n {
		ev := eventstore.EventData{ID: uuid.New(), Type: "TestEventRecorded", SchemaVersion: 1, Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
		if _, err := s.Append(context.Background(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func checkpoints(t *testing.T, s eventstore.Store) []audit.Checkpoint {
	t.Helper()
	var out []audit.Checkpoint
	after := uint64(0)
	for {
		page, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		for _, env := range page {
			if audit.IsCheckpoint(env) {
				cp, err := audit.ParseCheckpoint(env)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, cp)
			}
		}
		after = page[len(page)-1].Position
	}
}

// run starts a signer and returns a stop that waits for its final checkpoint.
func run(t *testing.T, s *checkpoint.Signer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("signer: %v", err)
		}
	}
}

// Every N events, and at shutdown, the head is signed in the log; every checkpoint verifies
// with the data folder's public key, and a restarted signer resumes its digest from the
// folder's state without breaking the sequence.
func TestSignerSignsTheHeadEveryNEventsAndAtShutdown(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	dir := t.TempDir()
	key, created, err := checkpoint.LoadOrCreateKey(dir)
	if err != nil || !created {
		t.Fatalf("key: %v (created %v)", err, created)
	}
	opts := checkpoint.Options{Every: 5, Interval: time.Hour}
	stop := run(t, checkpoint.New(store, key, dir, opts))
	appendEvents(t, store, 12)
	testwait.For(t, "two checkpoints after 12 events", func() bool { return len(checkpoints(t, store)) >= 2 })
	appendEvents(t, store, 2)
	stop()
	cps := checkpoints(t, store)
	head, _ := store.Head(context.Background())
	last := cps[len(cps)-1]
	// Every commit holds one event: the shutdown checkpoint signs every event before it
	// (14 and the earlier checkpoints) and is itself the head.
	if last.Events != head-1 || last.Position != head-1 || len(cps) < 3 {
		t.Fatalf("last checkpoint %+v of %d: want the shutdown one signing all %d events before it", last, len(cps), head-1)
	}

	st, err := checkpoint.ReadState(dir)
	if err != nil || st == nil || st.WrittenAt != head || st.Checkpoint != last {
		t.Fatalf("state %+v, %v: want the last checkpoint, written at %d", st, err, head)
	}
	// Resumed: the next checkpoint continues the same digest.
	stop = run(t, checkpoint.New(store, key, dir, opts))
	appendEvents(t, store, 3)
	stop()

	keys, err := checkpoint.PublicKeys(dir)
	if err != nil || len(keys) != 1 {
		t.Fatalf("public keys of the folder: %v, %v", keys, err)
	}
	res, err := audit.CheckStore(context.Background(), store, audit.CheckOptions{Keys: keys})
	if err != nil || res.Err() != nil {
		t.Fatalf("check: %v, %v", err, res.Err())
	}
	if n := len(checkpoints(t, store)); res.Checkpoints.Verified != n || n < 4 {
		t.Fatalf("%d of %d checkpoints verified", res.Checkpoints.Verified, n)
	}
	if err := checkpoint.CheckTail(context.Background(), store, dir); err != nil {
		t.Fatalf("tail: %v", err)
	}
	// A checkpoint checked with another key (say, one a forger signed with) does not pass.
	other, _, _ := ed25519.GenerateKey(nil)
	res, _ = audit.CheckStore(context.Background(), store, audit.CheckOptions{Keys: []ed25519.PublicKey{other}})
	if f := res.Checkpoints.Failure; f == nil || !strings.Contains(f.Detail, "not given") {
		t.Fatalf("checked with another key: %+v", res.Checkpoints)
	}
}

// With few events, the interval signs: the head is signed within the interval even though
// Every is far off, and a quiet log is not signed again.
func TestSignerSignsEveryIntervalWhileEventsCome(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	dir := t.TempDir()
	key, _, err := checkpoint.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, checkpoint.New(store, key, dir, checkpoint.Options{Every: 1_000_000, Interval: 20 * time.Millisecond}))
	defer stop()
	appendEvents(t, store, 3)
	testwait.For(t, "a checkpoint of the 3 events", func() bool {
		cps := checkpoints(t, store)
		return len(cps) == 1 && cps[0].Events == 3
	})
	head, _ := store.Head(context.Background())
	// Quiet: only the checkpoint itself came since, which is no reason to sign again. The
	// next event is, and its checkpoint follows the first one directly in the log.
	appendEvents(t, store, 1)
	testwait.For(t, "a second checkpoint", func() bool { return len(checkpoints(t, store)) == 2 })
	if cps := checkpoints(t, store); cps[1].Position != head+1 || cps[1].Events != 5 {
		t.Fatalf("second checkpoint %+v: want it to sign the event after the first checkpoint (position %d, 5 events)", cps[1], head+1)
	}
}

// On KurrentDB (here its gRPC stand-in: the server cannot run on this machine) positions
// are offsets, not dense; checkpoints are signed and verified by event count all the same.
func TestSignerOnTheKurrentDBStandin(t *testing.T) {
	conn, stopServer := standin.Start()
	defer stopServer()
	store, err := kurrentdb.Open(context.Background(), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dir := t.TempDir()
	key, _, err := checkpoint.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, checkpoint.New(store, key, dir, checkpoint.Options{Every: 3, Interval: time.Hour}))
	appendEvents(t, store, 4)
	testwait.For(t, "a checkpoint after 3 events", func() bool { return len(checkpoints(t, store)) == 1 })
	stop()
	keys, _ := checkpoint.PublicKeys(dir)
	res, err := audit.CheckStore(context.Background(), store, audit.CheckOptions{Keys: keys})
	if err != nil || res.Err() != nil || res.Checkpoints.Verified != 2 {
		t.Fatalf("check: %+v, %v", res, err)
	}
	if err := checkpoint.CheckTail(context.Background(), store, dir); err != nil {
		t.Fatal(err)
	}
}
