package jetstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/eventstore/storetest"
)

func connectCluster(t *testing.T, c *jstest.Cluster) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := jetstream.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// openOnCluster opens a store with more patience than open: a 3-replica stream is created
// through the cluster's leader, which a loaded machine may take seconds to answer.
func openOnCluster(t *testing.T, nc *nats.Conn, opts jetstream.Options) *jetstream.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func replicasOf(t *testing.T, nc *nats.Conn, stream string) int {
	t.Helper()
	js, _ := natsjs.New(nc)
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.Replicas
}

// The whole suite on a stream with 3 replicas on a 3-node cluster: reads that must be
// current (a stream's last commit) go to the leader, while batched reads may come from a
// follower that has not caught up yet.
func TestConformanceOnAClusterWith3Replicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := jstest.StartCluster(t, 3)
	c.WaitForLeader()
	n := 0
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		n++
		opts := jetstream.Options{Stream: fmt.Sprintf("R3_%d", n), SubjectPrefix: fmt.Sprintf("r3_%d", n), Replicas: 3}
		nc := connectCluster(t, c)
		s := openOnCluster(t, nc, opts)
		t.Cleanup(func() { s.Close(); deleteStream(t, nc, opts.Stream) })
		return storetest.Harness{
			Store:    s,
			Features: storetest.Features{Restart: true},
			Restart: func(t *testing.T) eventstore.Store {
				s.Close()
				s = openOnCluster(t, connectCluster(t, c), opts)
				return s
			},
		}
	})
}

// Replicas starting together create the same 3-replica stream at the same moment, before
// the cluster has even elected its JetStream leader: each waits and retries, none fails.
func TestReplicasCreateTheStreamTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := jstest.StartCluster(t, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		nc := connectCluster(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := jetstream.Open(ctx, nc, jetstream.Options{Replicas: 3})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if r := replicasOf(t, connectCluster(t, c), "EVENTS"); r != 3 {
		t.Fatalf("EVENTS has %d replicas, want 3", r)
	}
}

// The number of replicas is changed at start when it differs; a tool that opens the store
// without a number (0) leaves it as the deployment set it.
func TestReplicasChangeAtOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := jstest.StartCluster(t, 3)
	c.WaitForLeader()
	nc := connectCluster(t, c)
	s := openOnCluster(t, nc, jetstream.Options{Replicas: 1})
	id := uuid.New()
	if _, err := s.Append(context.Background(), "order-"+id.String(), eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if r := replicasOf(t, nc, "EVENTS"); r != 1 {
		t.Fatalf("EVENTS has %d replicas, want 1", r)
	}
	openOnCluster(t, nc, jetstream.Options{Replicas: 3}).Close()
	if r := replicasOf(t, nc, "EVENTS"); r != 3 {
		t.Fatalf("EVENTS has %d replicas after opening with 3, want 3", r)
	}
	s = openOnCluster(t, nc, jetstream.Options{})
	defer s.Close()
	if r := replicasOf(t, nc, "EVENTS"); r != 3 {
		t.Fatalf("EVENTS has %d replicas after opening without a number, want 3 still", r)
	}
	envs, err := s.ReadStream(context.Background(), "order-"+id.String(), 0)
	if err != nil || len(envs) != 1 {
		t.Fatalf("the event written at 1 replica, read at 3: %v %v", envs, err)
	}
}

// A single server cannot hold replicas: the start is refused at once, naming the setting.
func TestReplicasOnASingleServerAreRefused(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), true)
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := jetstream.Open(ctx, e.Conn, jetstream.Options{Replicas: 3})
	if err == nil || !strings.Contains(err.Error(), "--nats-replicas") || !strings.Contains(err.Error(), "not a cluster") {
		t.Fatalf("Open with 3 replicas on one server: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refused after %s: a permanent refusal is not retried", d)
	}
}

// LastVersion answers the stream as the server has it, whatever this process last wrote.
func TestLastVersionSeesAnotherWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := jstest.StartCluster(t, 3)
	c.WaitForLeader()
	a := openOnCluster(t, connectCluster(t, c), jetstream.Options{Replicas: 3})
	b := openOnCluster(t, connectCluster(t, c), jetstream.Options{Replicas: 3})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	stream := "order-" + uuid.NewString()
	if _, _, exists, err := b.LastVersion(ctx, stream); err != nil || exists {
		t.Fatalf("LastVersion of a new stream: exists %v, %v", exists, err)
	}
	if _, err := b.Append(ctx, stream, eventstore.NoStream, ev()); err != nil {
		t.Fatal(err)
	}
	res, err := a.Append(ctx, stream, eventstore.Exact(0), ev(), ev())
	if err != nil {
		t.Fatal(err)
	}
	v, pos, exists, err := b.LastVersion(ctx, stream)
	if err != nil || !exists || v != 2 || pos != res.Position {
		t.Fatalf("LastVersion after another writer: version %d at %d (exists %v, %v), want 2 at %d", v, pos, exists, err, res.Position)
	}
}
