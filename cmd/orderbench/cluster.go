package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// clusterBench runs, in one process and one run, a 3-node JetStream cluster on loopback
// (every write fsynced, streams with 3 replicas) and two orderd replicas on it: whole flows
// alternating replicas, then raw durable publishes and the store's appends on the same
// cluster, then the time one replica takes to take a role over when the other dies.
func clusterBench(clients int, duration, leaseTTL time.Duration) error {
	dir, err := os.MkdirTemp("", "orderbench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nodes, urls, err := startCluster(filepath.Join(dir, "nats"), 3)
	defer func() {
		for _, s := range nodes {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}()
	if err != nil {
		return err
	}
	ctx := context.Background()
	reps, key, err := startReplicas(ctx, dir, urls, leaseTTL)
	defer func() {
		for _, a := range reps {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = a.Shutdown(sctx)
			cancel()
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("cluster: 3 NATS nodes (sync_interval always), streams with 3 replicas, 2 orderd replicas (mailer in each)\n\n")
	fmt.Printf("flows: %d clients for %s, steps alternating the two replicas\n", clients, duration)
	cmds, err := flows([]string{reps[0].URL(), reps[1].URL()}, key, clients, duration, nil)
	if err != nil {
		return err
	}
	fmt.Printf("\nraw durable publishes on the same cluster: %d clients for %s, one 256 B message each, "+
		"expected last sequence per subject, a stream with 3 replicas\n", clients, duration)
	js, err := natsjs.New(reps[0].NATS)
	if err != nil {
		return err
	}
	rawRate, err := publishLoop(ctx, js, natsjs.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Storage: natsjs.FileStorage, Replicas: 3}, clients, duration)
	if err != nil {
		return err
	}
	fmt.Printf("\nstore appends on the same cluster: %d clients for %s, one event per append, the events stream (3 replicas)\n", clients, duration)
	storeRate, _ := appendLoop(reps[0].Store, clients, duration)
	fmt.Printf("\nsame run: flow commands/s %.0f = %.2fx the raw R3 durable publishes %.0f/s; store appends %.0f/s = %.2fx\n",
		cmds, cmds/rawRate, rawRate, storeRate, storeRate/rawRate)
	return failOver(reps, leaseTTL)
}

// startReplicas starts two orderd replicas, A and B, on the cluster at urls, with their
// data under dir, and answers the token key they share. The replicas started are answered
// even with an error, for the caller to shut down.
func startReplicas(ctx context.Context, dir, urls string, leaseTTL time.Duration) ([]*app.App, ed25519.PrivateKey, error) {
	var reps []*app.App
	var key ed25519.PrivateKey
	for i, name := range []string{"A", "B"} {
		data := filepath.Join(dir, name)
		if i > 0 { // one token key for both, as a deployment gives them
			if err := copyFile(tokens.DevKeyFile(filepath.Join(dir, "A")), tokens.DevKeyFile(data)); err != nil {
				return reps, nil, err
			}
		}
		a, err := app.New(ctx, app.Config{Addr: "127.0.0.1:0", DataDir: data, Store: urls, NATSReplicas: 3,
			ReplicaName: name, LeaseTTL: leaseTTL, ShutdownTimeout: 5 * time.Second}, zap.NewNop())
		if err != nil {
			return reps, nil, fmt.Errorf("replica %s: %w", name, err)
		}
		reps = append(reps, a)
		if err := a.Start(ctx); err != nil {
			return reps, nil, fmt.Errorf("replica %s: %w", name, err)
		}
		if i == 0 {
			if key, err = tokens.LoadPrivateKey(a.DevKeyFile); err != nil {
				return reps, nil, err
			}
		}
	}
	return reps, key, nil
}

// copyFile copies the private file from to the path to, making to's folder.
func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// failOver kills the replica holding the relay (its NATS connection goes first, so it gives
// nothing back) and measures the time until the other runs both the relay and the sweeper.
func failOver(reps []*app.App, leaseTTL time.Duration) error {
	holder, other := reps[0], reps[1]
	if !holder.Leases.Holds("relay") {
		holder, other = other, holder
	}
	if !holder.Leases.Holds("relay") {
		return errors.New("no replica holds the relay's role")
	}
	start := time.Now()
	holder.NATS.Close()
	// A benchmark measuring the take-over: polling at 5 ms is the resolution it reports.
	for !other.Leases.Holds("relay") || !other.Leases.Holds("sweeper") {
		if time.Since(start) > 10*leaseTTL {
			return fmt.Errorf("replica %s did not take the roles over within %s", other.Config.ReplicaName, 10*leaseTTL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Printf("\nfail-over: replica %s ran the relay and the sweeper %s after %s died (lease TTL %s)\n",
		other.Config.ReplicaName, time.Since(start).Round(time.Millisecond), holder.Config.ReplicaName, leaseTTL)
	return nil
}

// startCluster starts n nats-servers with JetStream in folders under dir, joined by routes.
func startCluster(dir string, n int) ([]*server.Server, string, error) {
	var routes, urls []string
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	var nodes []*server.Server
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprint(i+1)), SyncAlways: true, NoSigs: true, NoLog: true,
			MaxPayload: jetstream.DefaultMaxPayload,
			Cluster:    server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			return nodes, "", err
		}
		go s.Start()
		nodes = append(nodes, s)
		if !s.ReadyForConnections(10 * time.Second) {
			return nodes, "", fmt.Errorf("NATS node %d did not start", i+1)
		}
		urls = append(urls, s.ClientURL())
	}
	return nodes, strings.Join(urls, ","), nil
}

// publishLoop creates cfg's stream and has each client publish to a subject of its own,
// expecting its last sequence, for duration; it answers publishes/s.
func publishLoop(ctx context.Context, js natsjs.JetStream, cfg natsjs.StreamConfig, clients int, duration time.Duration) (float64, error) {
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return 0, err
	}
	body := bytes.Repeat([]byte("x"), 256)
	st := newStats()
	elapsed := during(clients, duration, func(run context.Context, c int) {
		subject := fmt.Sprintf("raw.%d", c)
		var last uint64
		for run.Err() == nil {
			t0 := time.Now()
			ack, err := js.Publish(ctx, subject, body, natsjs.WithExpectLastSequencePerSubject(last))
			st.add("Publish", time.Since(t0), err == nil)
			if err == nil {
				last = ack.Sequence
			}
		}
	})
	return st.report(elapsed, []string{"Publish"}), nil
}

// appendLoop has each client append one event at a time to a stream of its own; it
// answers appends/s and how many were acknowledged.
func appendLoop(store eventstore.Store, clients int, duration time.Duration) (float64, int) {
	payload := []byte(`{"enabled":false,"quote":{"gb":1,"netCents":2500,"vatCents":550,"totalCents":3050}}`)
	st := newStats()
	elapsed := during(clients, duration, func(run context.Context, _ int) {
		stream := eventstore.StreamName("order", uuid.New())
		var last eventstore.AppendResult
		for v := uint64(0); run.Err() == nil; v++ {
			// As the command path expects: the version with its commit's position.
			exp := eventstore.ExactAt(v-1, last.Position)
			if v == 0 {
				exp = eventstore.NoStream
			}
			t0 := time.Now()
			r, err := store.Append(context.Background(), stream, exp, eventstore.EventData{
				ID: uuid.New(), Type: "CoTerminationToggled", SchemaVersion: 1, Payload: payload,
				Metadata: eventstore.Metadata{CorrelationID: "bench", Actor: "bench"},
			})
			st.add("Append", time.Since(t0), err == nil)
			if err == nil {
				last = r
			}
		}
	})
	return st.report(elapsed, []string{"Append"}), len(st.lat["Append"])
}
