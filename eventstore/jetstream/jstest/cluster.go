package jstest

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// Cluster is a JetStream cluster of in-process nats-servers on loopback, each in its own
// temporary folder, every write fsynced (sync_interval: always), joined by cluster routes:
// the deployment the product runs on beyond one machine, for tests.
type Cluster struct {
	t     testing.TB
	Nodes []*server.Server
	dirs  []string // the nodes' folders, removed by stop
}

// StartCluster starts n nodes and stops them when the test ends. The JetStream meta
// leader is elected after it returns: the product's creation of streams waits for it.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	t.Cleanup(c.stop)
	// The ports are picked free and then given to the servers: another process on the
	// machine may take one in between, and a loaded machine may start a node slowly. Such
	// a start is tried again on new ports, not failed.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = c.start(n); err == nil {
			return c
		}
		t.Logf("cluster start, attempt %d: %v", attempt, err)
		c.stop()
	}
	t.Fatalf("a %d-node NATS cluster did not start: %v", n, err)
	return nil
}

func (c *Cluster) start(n int) error {
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range n {
		dir, err := os.MkdirTemp("", "jstest-cluster-")
		if err != nil {
			return err
		}
		c.dirs = append(c.dirs, dir)
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: dir, SyncAlways: true, NoSigs: true, NoLog: true,
			// As the product's servers: a commit with a 1 MiB event fits (see jetstream.DefaultMaxPayload).
			MaxPayload: jetstream.DefaultMaxPayload, MaxPending: 4 * jetstream.DefaultMaxPayload,
			Cluster: server.ClusterOpts{Name: "orders", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			return err
		}
		go s.Start()
		c.Nodes = append(c.Nodes, s)
		if !s.ReadyForConnections(30 * time.Second) {
			return fmt.Errorf("NATS node %d did not start", i+1)
		}
	}
	return nil
}

// stop shuts every node down, waits, then removes the nodes' folders (made here rather
// than by t.TempDir, whose cleanup would run before this one).
func (c *Cluster) stop() {
	for _, s := range c.Nodes {
		s.Shutdown()
		s.WaitForShutdown()
	}
	for _, d := range c.dirs {
		_ = os.RemoveAll(d)
	}
	c.Nodes, c.dirs = nil, nil
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
	testwait.For(c.t, "a JetStream leader in the NATS cluster, every node current", func() bool {
		leader, current := false, true
		for _, s := range c.Nodes {
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		return leader && current
	})
}
