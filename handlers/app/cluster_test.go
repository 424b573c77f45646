package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/relay"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// crash stops a replica as a dying process would: its NATS connection goes first, so that
// it neither gives back its leases nor records anything more, then the rest.
func (r *running) crash() {
	r.stopped = true
	r.a.NATS.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.a.Shutdown(ctx)
}

// clusterClient sends commands to whichever replica is up, each with an Idempotency-Key
// that stays the same through retries, so that a command whose answer was lost (a node or
// a replica dying under it) is answered from the log by the next attempt.
type clusterClient struct {
	t    *testing.T
	reps []*running
	down []atomic.Bool
	key  []byte // the token-signing key, shared by the replicas

	mu    sync.Mutex
	acked []ackedCommand
	count atomic.Int64
	// onAck runs after each acknowledged command with their number so far.
	onAck func(n int64)
}

type ackedCommand struct {
	stream   string
	version  uint64
	position uint64
}

func (c *clusterClient) token(role tokens.Role, sub string) string {
	c.t.Helper()
	key, err := tokens.LoadPrivateKey(string(c.key))
	if err != nil {
		c.t.Fatal(err)
	}
	tok, err := tokens.Mint(key, role, sub, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	return tok
}

// send posts body to path on replica want (or the next one up) until it is answered with
// a status below 500; stream names the aggregate for the record of acknowledged commands.
func (c *clusterClient) send(want int, path, token string, body any, stream func(map[string]any) string) map[string]any {
	key := uuid.NewString()
	b, _ := json.Marshal(body)
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		i := (want + attempt) % len(c.reps)
		if c.down[i].Load() {
			continue
		}
		req, _ := http.NewRequest("POST", c.reps[i].a.URL()+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(httpapi.HeaderIdempotencyKey, key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			// The replica is going away: a client's pause before it tries the other, part of
			// the scenario (the loop itself is bounded by the deadline above).
			time.Sleep(50 * time.Millisecond)
			continue
		}
		rb, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			last = fmt.Sprintf("%d %s", res.StatusCode, rb)
			// A NATS leader being elected: a client's pause before it retries with the same
			// key, part of the scenario, as a real client would back off.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if res.StatusCode >= 300 {
			c.t.Errorf("POST %s on replica %d: %d %s", path, i, res.StatusCode, rb)
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal(rb, &m); err != nil {
			c.t.Errorf("POST %s: %v", path, err)
			return nil
		}
		c.mu.Lock()
		c.acked = append(c.acked, ackedCommand{stream: stream(m), version: uint64(m["version"].(float64)), position: uint64(m["position"].(float64))})
		c.mu.Unlock()
		if c.onAck != nil {
			c.onAck(c.count.Add(1))
		}
		return m
	}
	c.t.Errorf("POST %s: no replica answered within 30 s; last: %s", path, last)
	return nil
}

// flow runs one customer's purchase, its steps alternating between the replicas; pay
// says whether the order is paid at the end (else it stays confirmed, awaiting payment).
func (c *clusterClient) flow(n int, pay bool) (orderID string, ok bool) {
	owner := fmt.Sprintf("cust-%d", n)
	op, cu := c.token(tokens.RoleOperator, "op"), c.token(tokens.RoleCustomer, owner)
	sub := c.send(n, "/v1/subscriptions", op, openBody(owner), func(m map[string]any) string { return "subscription-" + m["subscriptionId"].(string) })
	if sub == nil {
		return "", false
	}
	ord := func(m map[string]any) string { return "order-" + orderID }
	o := c.send(n+1, "/v1/orders", cu, map[string]any{"subscriptionId": sub["subscriptionId"], "channel": "app"},
		func(m map[string]any) string { return "order-" + m["orderId"].(string) })
	if o == nil {
		return "", false
	}
	orderID = o["orderId"].(string)
	base := "/v1/orders/" + orderID
	if c.send(n+2, base+"/checkout", cu, map[string]any{}, ord) == nil ||
		c.send(n+3, base+"/payment-method", cu, map[string]any{"method": "bank-transfer"}, ord) == nil {
		return orderID, false
	}
	conf := c.send(n+4, base+"/confirm", cu, map[string]any{"acceptGeneralConditions": true,
		"approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}, ord)
	if conf == nil || !pay {
		return orderID, conf != nil
	}
	total := conf["quote"].(map[string]any)["totalCents"]
	paid := c.send(n+5, base+"/payments", c.token(tokens.RolePayments, "gw"),
		map[string]any{"amountCents": total, "method": "bank-transfer", "reference": "CRO-" + orderID}, ord)
	return orderID, paid != nil
}

// Two orderd replicas on a 3-node JetStream cluster, streams with 3 replicas: flows whose
// steps alternate replicas complete while the node leading the events stream is killed and
// then one replica (the one holding the relay's and sweeper's roles) dies; afterwards every
// acknowledged command is in the log, no space is granted twice, no payment counted twice,
// every confirmed order's instructions are emailed once, and both replicas' read models are
// what a replay of the log gives.
func TestTwoReplicasOnANATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	cl := jstest.StartCluster(t, 3)
	dirA, dirB := t.TempDir(), t.TempDir()
	// One token key for both replicas, as a deployment gives them one public key.
	keyFile := tokens.DevKeyFile(dirB)
	if _, _, err := tokens.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(keyFile); err != nil || os.WriteFile(tokens.DevKeyFile(dirA), b, 0o600) != nil {
		t.Fatal(err)
	}
	replica := func(name, dir string, mailer bool) Config {
		cfg := testConfig(dir)
		cfg.Store, cfg.NATSReplicas, cfg.ReplicaName, cfg.LeaseTTL = cl.URL(), 3, name, time.Second
		cfg.NoMailer = !mailer
		return cfg
	}
	// B first, so that it takes the roles and its death makes A take them over. The mailer
	// runs on A, the replica that stays: the mailer's own once-only rule, over a crash, is
	// its package's test (a message a dead mailer held comes back after its ack wait, 60 s).
	b := startApp(t, replica("B", dirB, false))
	testwait.For(t, "B holds the relay's role", func() bool { return b.a.Leases.Holds("relay") })
	a := startApp(t, replica("A", dirA, true))

	// Every stream and bucket has 3 replicas.
	js, _ := natsjs.New(a.a.NATS)
	ctx := context.Background()
	for _, name := range []string{"EVENTS", relay.DefaultStream, "KV_" + httpapi.IdempotencyBucket, "KV_LEASES", "MAIL_DEADLETTER"} {
		var info *natsjs.StreamInfo
		testwait.For(t, name+" exists", func() bool {
			s, err := js.Stream(ctx, name)
			if err == nil {
				info, err = s.Info(ctx)
			}
			return err == nil
		})
		if info.Config.Replicas != 3 {
			t.Errorf("%s has %d replicas, want 3", name, info.Config.Replicas)
		}
	}

	c := &clusterClient{t: t, reps: []*running{a, b}, down: make([]atomic.Bool, 2), key: []byte(keyFile)}
	var killNode, killB sync.Once
	var failover time.Duration
	const flows = 24
	c.onAck = func(n int64) {
		switch {
		case n == flows*2:
			killNode.Do(func() {
				s, err := js.Stream(ctx, "EVENTS")
				if err != nil {
					t.Error(err)
					return
				}
				info, err := s.Info(ctx)
				if err != nil || info.Cluster == nil {
					t.Errorf("EVENTS stream info: %v", err)
					return
				}
				t.Logf("killing NATS node %s, the EVENTS stream's leader", info.Cluster.Leader)
				cl.Kill(info.Cluster.Leader)
			})
		case n == flows*4:
			killB.Do(func() {
				t.Log("crashing replica B")
				c.down[1].Store(true)
				start := time.Now()
				b.crash()
				// Bounded only against a hang: how fast it fails over is measured by
				// orderbench --cluster, not asserted on a loaded machine. On a worker's
				// goroutine, which may not end the test: Until, then Error.
				if !testwait.Until(time.Minute, func() bool { return a.a.Leases.Holds("relay") && a.a.Leases.Holds("sweeper") }) {
					t.Error("A never took over the relay and the sweeper from the crashed B")
					return
				}
				failover = time.Since(start)
				t.Logf("A took over the relay and the sweeper %s after B died", failover)
			})
		}
	}
	type result struct {
		order string
		paid  bool
	}
	results := make(chan result, flows)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				pay := n%2 == 0
				if id, ok := c.flow(n, pay); ok {
					results <- result{id, pay}
				}
			}
		}()
	}
	for n := range flows {
		work <- n
	}
	close(work)
	wg.Wait()
	close(results)
	if t.Failed() {
		t.FailNow()
	}
	if failover == 0 {
		t.Fatal("replica B was never crashed: the flows acknowledged too few commands")
	}
	paid, unpaid := map[string]bool{}, map[string]bool{}
	for r := range results {
		if r.paid {
			paid[r.order] = true
		} else {
			unpaid[r.order] = true
		}
	}
	if len(paid)+len(unpaid) != flows {
		t.Fatalf("%d flows of %d completed", len(paid)+len(unpaid), flows)
	}

	// Every acknowledged command is in the log, at the version and position it answered.
	for _, ack := range c.acked {
		envs, err := a.a.Store.ReadStream(ctx, ack.stream, ack.version)
		if err != nil || len(envs) == 0 || envs[0].StreamVersion != ack.version {
			t.Errorf("acknowledged %s version %d is not in the log: %v", ack.stream, ack.version, err)
			continue
		}
		at, err := a.a.Store.ReadAll(ctx, ack.position-1, 1)
		if err != nil || len(at) == 0 || at[0].Position != ack.position {
			t.Errorf("acknowledged position %d is not in the log: %v", ack.position, err)
		}
	}

	// The emails, the grants and the payments, from the log once everything has settled.
	var log clusterLog
	testwait.For(t, "every paid order granted and receipted, every unpaid one's instructions sent", func() bool {
		log = readClusterLog(t, a.a.Store)
		for id := range paid {
			if log.granted[id] == 0 || log.emails[id+"/receipt"] == 0 {
				return false
			}
		}
		for id := range unpaid {
			if log.emails[id+"/instructions"] == 0 {
				return false
			}
		}
		return true
	})
	for id, n := range log.granted {
		if n != 1 {
			t.Errorf("order %s granted %d times", id, n)
		}
	}
	for id, n := range log.payments {
		if n != 1 || !paid[id] {
			t.Errorf("order %s has %d payments (paid by the flows: %v)", id, n, paid[id])
		}
	}
	for k, n := range log.emails {
		if n != 1 {
			t.Errorf("email %s recorded %d times", k, n)
		}
		id, kind, _ := strings.Cut(k, "/")
		if _, err := os.Stat(filepath.Join(a.a.Outbox, id+"-"+kind+".eml")); err != nil {
			t.Errorf("email %s recorded, but not in the outbox: %v", k, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(a.a.Outbox, "*.eml"))
	if len(files) != len(log.emails) {
		t.Errorf("%d emails in the outbox, %d recorded", len(files), len(log.emails))
	}

	// B comes back; both replicas' read models are what a replay of the log gives.
	b = startApp(t, replica("B", dirB, false))
	head, err := a.a.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*running{a, b} {
		testwait.For(t, r.a.Config.ReplicaName+"'s read models at the head", func() bool {
			for _, m := range r.a.Projections.Status(ctx) {
				if m.Position < head {
					return false
				}
			}
			return true
		})
	}
	digests := map[string]string{}
	for _, r := range []*running{a, b} {
		st := r.a.Projections.Status(ctx)
		rep, err := audit.VerifyModels(ctx, r.a.Store, st, audit.NoProgress{})
		if err != nil {
			t.Fatal(err)
		}
		if d := rep.Differing(); len(d) > 0 {
			t.Errorf("replica %s: read models differ from a replay: %v", r.a.Config.ReplicaName, d)
		}
		for _, m := range st {
			if prev, ok := digests[m.Name]; ok && prev != m.Digest {
				t.Errorf("read model %s: A and B differ", m.Name)
			}
			digests[m.Name] = m.Digest
		}
	}
}

// clusterLog is what the whole log says of grants, payments and emails, by order.
type clusterLog struct {
	granted  map[string]int // SpaceAdded by order id
	payments map[string]int // PaymentRegistered by order id
	emails   map[string]int // EmailSent by "order id/kind"
}

func readClusterLog(t *testing.T, store eventstore.Store) clusterLog {
	t.Helper()
	l := clusterLog{granted: map[string]int{}, payments: map[string]int{}, emails: map[string]int{}}
	var after uint64
	for {
		envs, err := store.ReadAll(context.Background(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			return l
		}
		for _, e := range envs {
			after = e.Position
			id := strings.TrimPrefix(e.Stream, "order-")
			switch e.Type {
			case "SpaceAdded":
				var p domain.SpaceAdded
				if err := json.Unmarshal(e.Payload, &p); err != nil {
					t.Fatal(err)
				}
				l.granted[p.OrderID.String()]++
			case "PaymentRegistered":
				l.payments[id]++
			case "EmailSent":
				var p domain.EmailSent
				if err := json.Unmarshal(e.Payload, &p); err != nil {
					t.Fatal(err)
				}
				l.emails[id+"/"+p.Kind]++
			}
		}
	}
}

// Two replicas on one external store: a step taken on A is seen by B at once, by a plain
// read (B checks its cache against the stream, since other writers exist) and by a read
// given ?after= the position A answered; a refusal on B is decided on the stream's state,
// not on B's cache; /readyz and the metrics of each say which replica holds each role.
func TestReplicasAnswerFromTheStreamNotTheirCache(t *testing.T) {
	srv, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dirA, dirB := t.TempDir(), t.TempDir()
	keyFile := tokens.DevKeyFile(dirA)
	if _, _, err := tokens.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(keyFile); err != nil || os.WriteFile(tokens.DevKeyFile(dirB), b, 0o600) != nil {
		t.Fatal(err)
	}
	replica := func(name, dir string) Config {
		cfg := testConfig(dir)
		cfg.Store, cfg.ReplicaName, cfg.NoMailer = srv.ClientURL(), name, true
		return cfg
	}
	a := startApp(t, replica("A", dirA))
	testwait.For(t, "A holds the relay's role", func() bool { return a.a.Leases.Holds("relay") })
	b := startApp(t, replica("B", dirB))

	cu := a.token(tokens.RoleCustomer, "cust-fresh")
	sub := a.must(a.do("POST", "/v1/subscriptions", a.token(tokens.RoleOperator, "op"), openBody("cust-fresh")), 201).field(t, "subscriptionId").(string)
	id := a.must(a.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub, "channel": "panel"}), 201).field(t, "orderId").(string)
	// B caches the cart as it is now.
	if s := b.must(b.do("GET", "/v1/orders/"+id, cu, nil), 200).field(t, "status"); s != "cart" {
		t.Fatalf("B sees the new order as %v", s)
	}
	a.must(a.do("POST", "/v1/orders/"+id+"/checkout", cu, nil), 200)
	a.must(a.do("POST", "/v1/orders/"+id+"/payment-method", cu, map[string]any{"method": "bank-transfer"}), 200)
	// Confirmed on B, whose cache knows no payment method: decided on the stream, accepted.
	conf := b.must(b.do("POST", "/v1/orders/"+id+"/confirm", cu, map[string]any{"acceptGeneralConditions": true,
		"approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}), 200)
	total := conf.field(t, "quote").(map[string]any)["totalCents"]
	paid := a.must(a.do("POST", "/v1/orders/"+id+"/payments", a.token(tokens.RolePayments, "gw"),
		map[string]any{"amountCents": total, "method": "bank-transfer", "reference": "CRO-1"}), 200)
	pos := fmt.Sprint(paid.field(t, "position"))
	for _, path := range []string{"/v1/orders/" + id, "/v1/orders/" + id + "?after=" + pos} {
		if s := b.must(b.do("GET", path, cu, nil), 200).field(t, "status"); s != "paid" {
			t.Errorf("GET %s on B after paying on A: %v, want paid", path, s)
		}
	}
	if v := b.must(b.do("GET", "/v1/subscriptions/"+sub+"?after="+pos, cu, nil), 200).field(t, "space"); v == nil {
		t.Error("GET /v1/subscriptions/{id}?after= on B answers no space")
	}
	if ans := b.do("GET", "/v1/orders/"+id+"?after=x", cu, nil); ans.status != 400 {
		t.Errorf("?after=x: %d, want 400", ans.status)
	}
	// A refusal on B's stale cache would be "payment method missing"; on the stream it is
	// the truth: the order is paid.
	ans := b.do("POST", "/v1/orders/"+id+"/cancel", cu, nil)
	if ans.status != 409 || !strings.Contains(string(ans.body), "paid") {
		t.Errorf("cancel of a paid order on B: %d %s", ans.status, ans.body)
	}

	// Each replica says which one holds each role.
	for _, r := range []*running{a, b} {
		var rd httpapi.Readiness
		if err := json.Unmarshal(r.do("GET", "/readyz", "", nil).body, &rd); err != nil {
			t.Fatal(err)
		}
		var detail string
		for _, c := range rd.Components {
			if c.Name == "role:relay" {
				detail = c.Detail
			}
		}
		want := "held by this replica (A)"
		if r == b {
			want = "standby: held by A"
		}
		if !strings.Contains(detail, want) {
			t.Errorf("replica %s's /readyz says of the relay %q, want %q", r.a.Config.ReplicaName, detail, want)
		}
		metrics := string(r.do("GET", "/metrics", "", nil).body)
		line := fmt.Sprintf(`spaceorders_role_held{replica=%q,role="relay"} `, r.a.Config.ReplicaName)
		want = line + "1"
		if r == b {
			want = line + "0"
		}
		if !strings.Contains(metrics, want) {
			t.Errorf("replica %s's metrics lack %s", r.a.Config.ReplicaName, want)
		}
	}
}

// More replicas than a single server can hold: orderd refuses to start, naming the
// setting, instead of retrying for a minute.
func TestReplicasOnASingleServerStopTheStart(t *testing.T) {
	srv, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := testConfig(t.TempDir())
	cfg.Store, cfg.NATSReplicas = srv.ClientURL(), 3
	start := time.Now()
	a, err := New(context.Background(), cfg, nil)
	if err == nil {
		a.Shutdown(context.Background())
		t.Fatal("orderd started with 3 replicas on a single NATS server")
	}
	if !strings.Contains(err.Error(), "--nats-replicas") || !strings.Contains(err.Error(), "not a cluster") {
		t.Fatalf("refusal %q does not name --nats-replicas and the reason", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("refused after %s", d)
	}
}
