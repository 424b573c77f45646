package jetstream_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// blockSizes lists the events stream's block files as the group commit expects them:
// <store>/jetstream/$G/streams/EVENTS/msgs/<n>.blk, n counting from 1.
func blockSizes(t *testing.T, msgs string) map[string]int64 {
	t.Helper()
	ents, err := os.ReadDir(msgs)
	if err != nil {
		t.Fatalf("the stream's block folder: %v", err)
	}
	out := map[string]int64{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".blk") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = info.Size()
	}
	return out
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestGroupCommitFileLayout pins what the group commit relies on in the server: each
// acknowledged message is already in the stream's block files (which grow by at least its
// size), and a full block is followed by the next number. If a server upgrade buffers
// writes, renames or moves the files, this fails, instead of appends silently answered
// without being on disk.
func TestGroupCommitFileLayout(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), false)
	defer e.Close()
	s := open(t, e.Conn, jetstream.Options{})
	defer s.Close()
	msgs := filepath.Join(e.Server.JetStreamConfig().StoreDir, "$G", "streams", "EVENTS", "msgs")
	ctx := t.Context()

	// Payloads of almost 1 MiB: eight or nine of them fill an 8 MiB block.
	big, _ := json.Marshal(strings.Repeat("x", eventstore.MaxPayload-64))
	before := blockSizes(t, msgs)
	stream := eventstore.StreamName("order", uuid.New())
	for i := 0; ; i++ {
		ev := eventstore.EventData{ID: uuid.New(), Type: "Big", SchemaVersion: 1, Payload: big}
		fsyncs := s.Fsyncs()
		if _, err := s.Append(ctx, stream, eventstore.Any, ev); err != nil {
			t.Fatal(err)
		}
		after := blockSizes(t, msgs)
		if grew := total(after) - total(before); grew < int64(len(big)) {
			t.Fatalf("append %d answered while the block files grew by %d bytes, less than its %d: "+
				"the server no longer writes a message to its block file before acknowledging it", i, grew, len(big))
		}
		if s.Fsyncs() == fsyncs {
			t.Fatalf("append %d answered without a group commit", i)
		}
		if len(after) > 1 {
			for n := 1; n <= len(after); n++ {
				if _, ok := after[blockName(n)]; !ok {
					t.Fatalf("block files %v are not numbered 1..%d", after, len(after))
				}
			}
			return
		}
		if i > 20 {
			t.Fatalf("no second block file after %d appends of 1 MiB: %v", i, after)
		}
		before = after
	}
}

func blockName(n int) string { return strconv.Itoa(n) + ".blk" }

// Concurrent appends share fsyncs: many appends, fewer group commits, each answered only
// after one that started after it was written.
func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), false)
	defer e.Close()
	s := open(t, e.Conn, jetstream.Options{})
	defer s.Close()
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := eventstore.StreamName("order", uuid.New())
			for i := 0; i < each; i++ {
				exp := eventstore.NoStream
				if i > 0 {
					exp = eventstore.Exact(uint64(i - 1))
				}
				if _, err := s.Append(context.Background(), stream, exp, ev()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := s.Fsyncs()
	t.Logf("%d appends, %d group commits", writers*each, n)
	if n == 0 || n >= writers*each {
		t.Fatalf("%d appends took %d group commits: none shared", writers*each, n)
	}
}
