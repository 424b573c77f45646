package open_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/eventstore/open"
)

func TestKind(t *testing.T) {
	for url, want := range map[string]string{
		"":                                   open.Embedded,
		"nats://127.0.0.1:4222":              open.NATS,
		"nats://a:4222, tls://b:4222":        open.NATS,
		"esdb://127.0.0.1:2113?tls=false":    open.Kurrent,
		"esdb+discover://cluster.local:2113": open.Kurrent,
	} {
		if got, err := open.Kind(url); err != nil || got != want {
			t.Errorf("Kind(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	for _, bad := range []string{"http://x", "nats://", "127.0.0.1:4222", "nats://a:4222,http://b"} {
		if got, err := open.Kind(bad); err == nil || !strings.Contains(err.Error(), "want empty") {
			t.Errorf("Kind(%q) = %q, %v; want an error saying what a store URL looks like", bad, got, err)
		}
	}
}

// appendOne writes one event to a new stream and reads it back: the store is usable.
func appendOne(t *testing.T, s eventstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream := eventstore.StreamName("order", uuid.New())
	if _, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.EventData{
		ID: uuid.New(), Type: "CoTerminationToggled", SchemaVersion: 1, Payload: []byte(`{"enabled":true}`),
	}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, stream, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read back %d events, %v", len(evs), err)
	}
}

// The same data folder opened twice, one after the other, holds what the first wrote: the
// embedded store lives in <data>/jetstream, as orderd keeps it, and Close releases it.
func TestEmbeddedInDataFolder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := open.Open(ctx, open.Config{DataDir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != open.Embedded || s.Embedded == nil || s.Conn == nil {
		t.Fatalf("opened %+v", s)
	}
	appendOne(t, s.Store)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open.Open(ctx, open.Config{DataDir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.Store.ReadAll(ctx, 0, 16)
	if err != nil || len(all) != 1 {
		t.Fatalf("reopened folder holds %d events (%v), want 1", len(all), err)
	}
}

// A nats:// URL reaches another process's server: here an embedded one listening.
func TestNATSURL(t *testing.T) {
	ctx := context.Background()
	srv, err := open.Open(ctx, open.Config{DataDir: t.TempDir(), RelaxedSync: true,
		Server: jetstream.EmbeddedConfig{Listen: "127.0.0.1:-1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s, err := open.Open(ctx, open.Config{URL: srv.Embedded.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind != open.NATS || s.Embedded != nil || s.Conn == nil {
		t.Fatalf("opened %+v", s)
	}
	appendOne(t, s.Store)
}

// KurrentDB, here its stand-in (no KurrentDB server runs on these machines); with
// EmbeddedNATS the data folder's server is started beside it, for orderd's notifications.
func TestKurrentWithEmbeddedNATS(t *testing.T) {
	url, stop := standin.Start()
	defer stop()
	s, err := open.Open(context.Background(), open.Config{URL: url, DataDir: t.TempDir(), RelaxedSync: true, EmbeddedNATS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Kind != open.Kurrent || s.Embedded == nil || s.Conn == nil {
		t.Fatalf("opened %+v", s)
	}
	appendOne(t, s.Store)
}

func TestNoStoreNamed(t *testing.T) {
	if _, err := open.Open(context.Background(), open.Config{}); err == nil || !strings.Contains(err.Error(), "give a data folder") {
		t.Fatalf("Open without a folder or URL: %v", err)
	}
}
