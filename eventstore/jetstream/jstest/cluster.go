package jstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// Cluster is a JetStream cluster of in-process nats-servers on loopback, each in its own
// temporary folder, every write fsynced (sync_interval: always), joined by cluster routes:
// the deployment the product runs on beyond one machine, for tests.
type Cluster struct {
	t     testing.TB
	Nodes []*server.Server
}

// StartCluster starts n nodes and stops them when the test ends. The JetStream meta
// leader is elected after it returns: the product's creation of streams waits for it.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	c := &Cluster{t: t}
	// Registered after the folders, so that it runs before they are removed.
	t.Cleanup(func() {
		for _, s := range c.Nodes {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: dirs[i], SyncAlways: true, NoSigs: true, NoLog: true,
			// As the product's servers: a commit with a 1 MiB event fits (see jetstream.DefaultMaxPayload).
			MaxPayload: jetstream.DefaultMaxPayload, MaxPending: 4 * jetstream.DefaultMaxPayload,
			Cluster: server.ClusterOpts{Name: "orders", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("NATS node %d did not start", i+1)
		}
		c.Nodes = append(c.Nodes, s)
	}
	return c
}

// URL lists every node's client URL, comma-separated, as a deployment gives them.
func (c *Cluster) URL() string {
	var urls []string
	for _, s := range c.Nodes {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// Kill stops the node named name at once.
func (c *Cluster) Kill(name string) {
	c.t.Helper()
	for _, s := range c.Nodes {
		if s.Name() == name {
			s.Shutdown()
			s.WaitForShutdown()
			return
		}
	}
	c.t.Fatalf("no NATS node %s", name)
}

// WaitForLeader waits until the cluster has elected its JetStream meta leader and every
// node follows it, for a test about what comes after the cluster's start.
func (c *Cluster) WaitForLeader() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, current := false, true
		for _, s := range c.Nodes {
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		if leader && current {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the NATS cluster elected no JetStream leader within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
