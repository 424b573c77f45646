package kurrentdb_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/eventstore/storetest"
)

// TestConformanceOnStandin runs the shared suite against the adapter talking to the
// in-memory gRPC STAND-IN of KurrentDB (standin package). It proves the adapter's mapping
// of the client's protocol; it says nothing about the real server's behaviour, which
// TestConformanceOnKurrentDB checks when a server is at hand.
func TestConformanceOnStandin(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		srv := standin.New()
		srv.SetMaxAppendSize(composeMaxAppendSize)
		conn, stop := srv.Start()
		t.Cleanup(stop)
		s := open(t, conn)
		return storetest.Harness{
			Store: s,
			// The data lives in the stand-in, so a restart is a new client on it.
			Restart: func(t *testing.T) eventstore.Store {
				_ = s.Close()
				return open(t, conn)
			},
			Features: storetest.Features{Restart: true},
		}
	})
}

// composeMaxAppendSize is the server's MaxAppendSize as docker-compose.yml sets it
// (KURRENTDB_MAX_APPEND_SIZE): the suite appends an event of eventstore.MaxPayload, which
// the server's default (1 MiB, counting metadata too) refuses.
const composeMaxAppendSize = 8 << 20

// TestConformanceOnKurrentDB runs the suite against a real KurrentDB named by
// EVENTSTORE_URL (for example esdb://127.0.0.1:2113?tls=false, the server of
// docker-compose.yml, whose MaxAppendSize the suite needs; see the README). A real log is
// shared and never empty: each subtest's store has a stream prefix of its own (so that an
// orderd writing to the same server does not disturb it) and sees $all through a floor, as
// if it began at the record that was last when the subtest started.
func TestConformanceOnKurrentDB(t *testing.T) {
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		t.Skip("EVENTSTORE_URL not set: no real KurrentDB to test against")
	}
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		opts := kurrentdb.Options{StreamPrefix: "storetest-" + uuid.NewString()[:8] + "."}
		s := openWith(t, url, opts)
		floor := lastRecord(t, url)
		return storetest.Harness{
			Store: floored{s, floor},
			Restart: func(t *testing.T) eventstore.Store {
				_ = s.Close()
				return floored{openWith(t, url, opts), floor}
			},
			Features: storetest.Features{Restart: true},
		}
	})
}

// lastRecord is the position of the last record in the server's $all, whoever wrote it.
func lastRecord(t *testing.T, url string) uint64 {
	t.Helper()
	rs, err := rawClient(t, url).ReadAll(ctx(t), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return ev.OriginalEvent().Position.Commit
}

func open(t testing.TB, conn string) *kurrentdb.Store {
	t.Helper()
	return openWith(t, conn, kurrentdb.Options{})
}

func openWith(t testing.TB, conn string, opts kurrentdb.Options) *kurrentdb.Store {
	t.Helper()
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	if opts.MaxAppendSize == 0 {
		opts.MaxAppendSize = composeMaxAppendSize
	}
	s, err := kurrentdb.Open(ctx(t), conn, opts)
	if err != nil {
		t.Fatalf("open %s: %v", conn, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// floored hides the part of a shared, non-empty log written before floor.
type floored struct {
	*kurrentdb.Store
	floor uint64
}

func (f floored) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	return f.Store.ReadAll(ctx, max(after, f.floor), limit)
}

func (f floored) Subscribe(ctx context.Context, after uint64, fn func(eventstore.Envelope) error) error {
	return f.Store.Subscribe(ctx, max(after, f.floor), fn)
}

func (f floored) Head(ctx context.Context) (uint64, error) {
	h, err := f.Store.Head(ctx)
	if h <= f.floor {
		h = 0
	}
	return h, err
}
