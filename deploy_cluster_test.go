package spaceorders_test

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// docker-compose.cluster.yml is checked like the single-node file: every part there, with
// a health check, a restart policy and a volume of its own; only the load balancer's and
// mailpit's ports on the host; the nodes of each cluster pointing at one another; the
// replicas sharing the store, NATS with 3 replicas, and the token key; and every variable
// one the programs read.

var (
	kurrentNodes = []string{"kurrentdb-1", "kurrentdb-2", "kurrentdb-3"}
	natsNodes    = []string{"nats-1", "nats-2", "nats-3"}
	replicas     = []string{"orderd-1", "orderd-2"}
)

func TestComposeClusterRunsEveryPart(t *testing.T) {
	c := loadComposeFile(t, "docker-compose.cluster.yml")
	var names []string
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"kurrentdb-1", "kurrentdb-2", "kurrentdb-3", "lb", "mailer", "mailpit",
		"nats-1", "nats-2", "nats-3", "orderd-1", "orderd-2"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	usedBy := map[string]string{}
	for n, s := range c.Services {
		if len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no health check", n)
		}
		if s.Restart != "unless-stopped" && s.Restart != "always" {
			t.Errorf("%s has restart policy %q", n, s.Restart)
		}
		var got []string
		for _, p := range s.Ports {
			got = append(got, p[strings.LastIndex(p, ":")+1:])
		}
		if published := map[string][]string{"lb": {"8080"}, "mailpit": {"8025"}}[n]; !slices.Equal(got, published) {
			t.Errorf("%s publishes ports %v, want %v", n, got, published)
		}
		for _, v := range s.Volumes {
			name := strings.SplitN(v, ":", 2)[0]
			if _, ok := c.Volumes[name]; !ok {
				continue
			}
			if other, ok := usedBy[name]; ok {
				t.Errorf("%s and %s share the volume %s: two nodes would write one folder", n, other, name)
			}
			usedBy[name] = n
		}
	}
	for _, n := range append(append(append([]string{"mailpit"}, kurrentNodes...), natsNodes...), replicas...) {
		if !hasNamedVolume(c, c.Services[n]) {
			t.Errorf("%s keeps its data in no named volume", n)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "docker-compose.cluster.yml") {
		t.Error("the README does not say when to choose docker-compose.cluster.yml")
	}
}

// The KurrentDB nodes form one cluster of three: each gossips with the other two at the
// addresses they replicate on, and clients are told the nodes' service names.
func TestComposeClusterFormsAKurrentDBCluster(t *testing.T) {
	c := loadComposeFile(t, "docker-compose.cluster.yml")
	addr := map[string]string{}
	for _, n := range kurrentNodes {
		addr[n] = c.Services[n].Environment["KURRENTDB_REPLICATION_IP"]
	}
	for _, n := range kurrentNodes {
		s := c.Services[n]
		env := s.Environment
		if !strings.HasSuffix(s.Image, "/kurrentdb:25.1.4") {
			t.Errorf("%s image %q, want .../kurrentdb:25.1.4", n, s.Image)
		}
		if env["KURRENTDB_CLUSTER_SIZE"] != "3" || env["KURRENTDB_DISCOVER_VIA_DNS"] != "false" {
			t.Errorf("%s: cluster size %q, discovery by DNS %q", n, env["KURRENTDB_CLUSTER_SIZE"], env["KURRENTDB_DISCOVER_VIA_DNS"])
		}
		if v, err := strconv.Atoi(env["KURRENTDB_MAX_APPEND_SIZE"]); err != nil || v < 8<<20 {
			t.Errorf("%s: KURRENTDB_MAX_APPEND_SIZE %q, want at least 8 MiB", n, env["KURRENTDB_MAX_APPEND_SIZE"])
		}
		var seeds []string
		for _, o := range kurrentNodes {
			if o != n {
				seeds = append(seeds, addr[o]+":2113")
			}
		}
		if got := strings.Split(env["KURRENTDB_GOSSIP_SEED"], ","); !slices.Equal(got, seeds) {
			t.Errorf("%s gossips with %v, want the other nodes %v", n, got, seeds)
		}
		if env["KURRENTDB_ADVERTISE_HOST_TO_CLIENT_AS"] != n {
			t.Errorf("%s advertises itself to clients as %q", n, env["KURRENTDB_ADVERTISE_HOST_TO_CLIENT_AS"])
		}
		nets, _ := s.Networks.(map[string]any)
		cl, _ := nets["cluster"].(map[string]any)
		if cl["ipv4_address"] != addr[n] || addr[n] == "" {
			t.Errorf("%s replicates on %q but has the address %v", n, addr[n], cl["ipv4_address"])
		}
	}
}

// The NATS nodes form one cluster (routes to all three, distinct names) that fsyncs
// every write; orderd and the mailer make every stream with 3 replicas on it.
func TestComposeClusterFormsANATSCluster(t *testing.T) {
	c := loadComposeFile(t, "docker-compose.cluster.yml")
	conf, err := os.ReadFile("deploy/nats-cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*sync_interval:\s*always\s*$`).Match(conf) {
		t.Error("deploy/nats-cluster.conf does not fsync every write (sync_interval: always)")
	}
	if !regexp.MustCompile(`(?m)^server_name:\s*\$NATS_SERVER_NAME\s*$`).Match(conf) {
		t.Error("deploy/nats-cluster.conf does not take each node's name from NATS_SERVER_NAME")
	}
	names := map[string]bool{}
	for _, n := range natsNodes {
		if !strings.Contains(string(conf), "nats-route://"+n+":6222") {
			t.Errorf("deploy/nats-cluster.conf has no route to %s", n)
		}
		s := c.Services[n]
		names[s.Environment["NATS_SERVER_NAME"]] = true
		if !slices.Contains(s.Volumes, "./deploy/nats-cluster.conf:/etc/nats/nats.conf:ro") {
			t.Errorf("%s does not run deploy/nats-cluster.conf", n)
		}
	}
	if len(names) != len(natsNodes) {
		t.Errorf("the NATS nodes' names are not distinct: %v", names)
	}
	natsURL := "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
	for n, env := range map[string]map[string]string{"orderd-1": c.Services["orderd-1"].Environment,
		"orderd-2": c.Services["orderd-2"].Environment, "mailer": c.Services["mailer"].Environment} {
		prefix := "ORDERD_"
		if n == "mailer" {
			prefix = "MAILER_"
		}
		if env[prefix+"NATS_URL"] != natsURL {
			t.Errorf("%s's NATS is %q, want every node: %s", n, env[prefix+"NATS_URL"], natsURL)
		}
		if env[prefix+"NATS_REPLICAS"] != "3" {
			t.Errorf("%s makes its streams with %q replicas, want 3", n, env[prefix+"NATS_REPLICAS"])
		}
	}
}

// Two replicas of one deployment: the same store (every KurrentDB node, found by gossip),
// the same token key and catalogue, different names, no mailer of their own (the mailer
// service sends), behind a load balancer that knows both.
func TestComposeClusterReplicasShareOneDeployment(t *testing.T) {
	c := loadComposeFile(t, "docker-compose.cluster.yml")
	first := c.Services[replicas[0]].Environment
	seen := map[string]bool{}
	for _, n := range replicas {
		s := c.Services[n]
		env := s.Environment
		for _, k := range []string{"ORDERD_STORE", "ORDERD_NATS_URL", "ORDERD_JWT_PUBLIC_KEYS", "ORDERD_CATALOGUE"} {
			if env[k] != first[k] || env[k] == "" {
				t.Errorf("%s's %s %q is not the other replica's %q", n, k, env[k], first[k])
			}
		}
		if env["ORDERD_MAILER"] != "false" {
			t.Errorf("%s runs a mailer of its own beside the mailer service", n)
		}
		if name := env["ORDERD_REPLICA_NAME"]; name == "" || seen[name] {
			t.Errorf("%s's replica name %q is empty or another's", n, name)
		} else {
			seen[name] = true
		}
		if !slices.Contains(s.Volumes, "./deploy/keys/jwt-public.pem:"+env["ORDERD_JWT_PUBLIC_KEYS"]+":ro") {
			t.Errorf("%s does not mount the deployment's token key", n)
		}
		if s.Entrypoint[0] != "/usr/local/bin/orderd" {
			t.Errorf("%s runs %v", n, s.Entrypoint)
		}
	}
	if ml := c.Services["mailer"].Environment["MAILER_STORE"]; ml != first["ORDERD_STORE"] {
		t.Errorf("the mailer records emails in %q, orderd's log is %q", ml, first["ORDERD_STORE"])
	}
	cfg, err := esdb.ParseConnectionString(first["ORDERD_STORE"])
	if err != nil {
		t.Fatalf("ORDERD_STORE %q: %v", first["ORDERD_STORE"], err)
	}
	var seeds []string
	for _, s := range cfg.GossipSeeds {
		seeds = append(seeds, s.Host+":"+strconv.Itoa(int(s.Port)))
	}
	if want := []string{"kurrentdb-1:2113", "kurrentdb-2:2113", "kurrentdb-3:2113"}; !slices.Equal(seeds, want) || !cfg.DnsDiscover {
		t.Errorf("ORDERD_STORE's nodes %v (found by gossip: %v), want %v found by gossip", seeds, cfg.DnsDiscover, want)
	}
	lb := c.Services["lb"]
	if !slices.Contains(lb.Volumes, "./deploy/nginx-cluster.conf:/etc/nginx/conf.d/default.conf:ro") {
		t.Fatalf("the load balancer does not run deploy/nginx-cluster.conf: %v", lb.Volumes)
	}
	for _, n := range replicas {
		if _, ok := lb.DependsOn[n]; !ok {
			t.Errorf("the load balancer does not wait for %s", n)
		}
	}
	conf, err := os.ReadFile("deploy/nginx-cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range replicas {
		if !regexp.MustCompile(`(?m)^\s*server\s+` + n + `:8080\b`).Match(conf) {
			t.Errorf("deploy/nginx-cluster.conf does not send to %s:8080", n)
		}
	}
	if strings.Contains(string(conf), "non_idempotent") {
		t.Error("the load balancer resends commands: a command must be retried by its client, with its Idempotency-Key")
	}
	if !regexp.MustCompile(`(?m)^\s*listen\s+8080;`).Match(conf) {
		t.Error("the load balancer does not listen on 8080, the port it publishes")
	}
}

func TestComposeClusterSetsOnlyVariablesTheProgramsRead(t *testing.T) {
	c := loadComposeFile(t, "docker-compose.cluster.yml")
	read := map[string]map[string]bool{"orderd": envRead(t, "ORDERD_", "orderd"), "mailer": envRead(t, "MAILER_", "mailer")}
	for n, s := range c.Services {
		if s.Image != "spaceorders:latest" {
			continue
		}
		program := s.Entrypoint[0][strings.LastIndex(s.Entrypoint[0], "/")+1:]
		for name := range s.Environment {
			if !read[program][name] {
				t.Errorf("%s sets %s, which %s does not read", n, name, program)
			}
		}
	}
}
