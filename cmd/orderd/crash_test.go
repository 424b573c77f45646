package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// accepted is a command that got a 2xx: its events must be in the log after any crash.
type accepted struct {
	stream   string
	version  uint64
	position uint64
}

// The process is killed with SIGKILL while clients run full order flows against it. After
// a restart, every acknowledged command's events are in the log at the version and
// position it was told, and every paid order is applied to its subscription exactly once.
func TestCrashLosesNoAcknowledgedCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), ".", "../orderctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	addr := freeAddr(t)
	d := startOrderd(t, bin, data, addr)
	tokens := map[string]string{}
	for _, role := range []string{"operator", "payments"} {
		tokens[role] = mintToken(t, bin, data, role, "crash-"+role)
	}

	var mu sync.Mutex
	var acks []accepted
	paid := map[uuid.UUID]bool{}
	record := func(category string, id uuid.UUID, ans map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		acks = append(acks, accepted{eventstore.StreamName(category, id), uint64(ans["version"].(float64)), uint64(ans["position"].(float64))})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	flows := make(chan int, 1000)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{url: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}, ctx: ctx}
			for i := 0; ctx.Err() == nil; i++ {
				owner := fmt.Sprintf("crash-cust-%d-%d", c, i)
				cu := mintTokenFast(t, bin, data, owner)
				sub, ok := cl.post("/v1/subscriptions", tokens["operator"], openBody(owner))
				if !ok {
					return
				}
				subID := uuid.MustParse(sub["subscriptionId"].(string))
				record(command.SubscriptionCategory, subID, sub)
				o, ok := cl.post("/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "app"})
				if !ok {
					return
				}
				orderID := uuid.MustParse(o["orderId"].(string))
				record(command.OrderCategory, orderID, o)
				path := "/v1/orders/" + orderID.String()
				var ans map[string]any
				for _, step := range []struct {
					path, token string
					body        any
				}{
					{path + "/co-termination", cu, map[string]any{"enabled": false}},
					{path + "/checkout", cu, nil},
					{path + "/payment-method", cu, map[string]any{"method": "card"}},
					{path + "/confirm", cu, map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "v1"}},
				} {
					if ans, ok = cl.post(step.path, step.token, step.body); !ok {
						return
					}
					record(command.OrderCategory, orderID, ans)
				}
				total := ans["quote"].(map[string]any)["totalCents"]
				if ans, ok = cl.post(path+"/payments", tokens["payments"], map[string]any{"amountCents": total, "method": "card", "reference": "T-" + orderID.String()}); !ok {
					return
				}
				record(command.OrderCategory, orderID, ans)
				mu.Lock()
				paid[orderID] = true
				mu.Unlock()
				flows <- 1
			}
		}()
	}
	// Kill once some flows are done, in the middle of others.
	killAfter(t, d, flows, 12, "flows")
	cancel()
	wg.Wait()
	t.Logf("killed after %d acknowledged commands, %d paid orders", len(acks), len(paid))

	// Restart: the process manager picks up from its checkpoint; then stop it gracefully.
	d = startOrderd(t, bin, data, addr)
	op := mintToken(t, bin, data, "operator", "checker")
	cl := &client{url: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}, ctx: context.Background()}
	for id := range paid {
		testwait.For(t, "order "+id.String()+", paid, applied after the restart", func() bool {
			o := cl.get(t, "/v1/orders/"+id.String(), op)
			s := cl.get(t, "/v1/subscriptions/"+o["subscriptionId"].(string), op)
			return len(s["space"].([]any)) == 1
		})
	}
	// Payments whose answers the crash swallowed are in the log too: the process manager
	// applies them after the restart, and has acted on the whole log when its lag is 0.
	testwait.For(t, "the process manager caught up with the log after the restart", func() bool {
		return strings.Contains(cl.text(t, "/metrics"), `spaceorders_follower_lag{follower="purchases"} 0`+"\n")
	})
	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("orderd did not stop cleanly on SIGTERM: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "checkpoints", "purchases")); err != nil {
		t.Errorf("no process manager checkpoint after SIGTERM: %v", err)
	}

	// Read the log itself.
	_, store := jstest.Start(t, jetstream.EmbeddedConfig{Dir: filepath.Join(data, "jetstream"), RelaxedSync: true})
	for _, a := range acks {
		envs, err := store.ReadStream(context.Background(), a.stream, a.version)
		if err != nil || len(envs) == 0 || envs[0].StreamVersion != a.version || envs[0].Position > a.position {
			t.Fatalf("acknowledged %s version %d at %d is not in the log (%v, %d events)", a.stream, a.version, a.position, err, len(envs))
		}
		// The answer's position is the command's last event, or, for the payment that pays
		// an order, the grant on the subscription that follows it: a commit of the log.
		if envs[0].Position != a.position {
			at, err := store.ReadAll(context.Background(), a.position-1, 1)
			if err != nil || len(at) == 0 || at[0].Position != a.position {
				t.Fatalf("acknowledged %s version %d answered position %d, which is not in the log (%v)", a.stream, a.version, a.position, err)
			}
		}
	}
	var all []eventstore.Envelope
	for after := uint64(0); ; {
		page, err := store.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	codec := eventstore.DomainCodec()
	paidInLog, spaceAdded := map[uuid.UUID]bool{}, map[uuid.UUID]int{}
	for _, env := range all {
		if env.Type == eventstore.LogCheckpointType {
			continue // the log's signed head, not a domain event
		}
		ev, err := codec.DecodeDomain(env)
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case domain.OrderPaid:
			paidInLog[e.OrderID] = true
		case domain.SpaceAdded:
			spaceAdded[e.OrderID]++
		}
	}
	for id := range paid {
		if !paidInLog[id] {
			t.Errorf("order %s was answered paid but the log has no OrderPaid", id)
		}
	}
	for id := range paidInLog { // including payments whose answer the crash swallowed
		if spaceAdded[id] != 1 {
			t.Errorf("paid order %s has %d SpaceAdded, want exactly 1", id, spaceAdded[id])
		}
	}
	for id, n := range spaceAdded {
		if !paidInLog[id] {
			t.Errorf("SpaceAdded ×%d for order %s, which is not paid", n, id)
		}
	}
	t.Logf("%d events in the log, %d paid orders, each applied once", len(all), len(paidInLog))
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startOrderd(t *testing.T, bin, data, addr string) *exec.Cmd {
	t.Helper()
	d := exec.Command(filepath.Join(bin, "orderd"), "--addr", addr, "--data", data)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "orderd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.Stdout, d.Stderr = logFile, logFile
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.ProcessState == nil {
			_ = d.Process.Kill()
			_ = d.Wait()
		}
		logFile.Close()
		if t.Failed() { // what orderd said, for the failure's reader
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				var lines []string // the requests' lines left out: the clients' own failures say those
				for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if !strings.Contains(l, `"logger":"http"`) {
						lines = append(lines, l)
					}
				}
				t.Logf("orderd's log but its requests, last lines:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
			}
		}
	})
	if !testwait.Until(testwait.Timeout, func() bool {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}) {
		b, _ := os.ReadFile(logFile.Name())
		t.Fatalf("orderd not ready within %s:\n%s", testwait.Timeout, b)
	}
	return d
}

// mintToken runs `orderctl token`, the command scripts rely on.
func mintToken(t *testing.T, bin, data, role, sub string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "orderctl"), "token", "--data", data, "--role", role, "--sub", sub).Output()
	if err != nil {
		t.Fatalf("orderctl token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// mintTokenFast signs a customer token in process with the data folder's key, as
// orderctl does, for the many customers of the load.
func mintTokenFast(t *testing.T, _, data, sub string) string {
	key, err := tokens.LoadPrivateKey(tokens.DevKeyFile(data))
	if err != nil {
		t.Error(err)
		return ""
	}
	tok, err := tokens.Mint(key, tokens.RoleCustomer, sub, time.Hour)
	if err != nil {
		t.Error(err)
	}
	return tok
}

type client struct {
	url string
	hc  *http.Client
	ctx context.Context
}

// post sends a command; ok is false when it did not get a 2xx (the server is gone).
func (c *client) post(path, token string, body any) (map[string]any, bool) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(c.ctx, "POST", c.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode/100 != 2 {
		return nil, false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

func (c *client) get(t *testing.T, path, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", c.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
	return m
}

// killAfter kills orderd with SIGKILL once n of what its clients report have come
// (whatever is then in flight is cut off), and waits for it to be gone.
func killAfter[T any](t *testing.T, d *exec.Cmd, done <-chan T, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-done:
		case <-time.After(testwait.Timeout):
			t.Fatalf("%d %s of %d in %s: the clients are stuck", i, what, n, testwait.Timeout)
		}
	}
	if err := d.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.Wait()
}

// text is the body of a GET that needs no token (/metrics).
func (c *client) text(t *testing.T, path string) string {
	t.Helper()
	res, err := c.hc.Get(c.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
	return string(b)
}

func openBody(owner string) map[string]any {
	year := time.Now().Year() + 1
	return map[string]any{
		"ownerId": owner, "language": "it",
		"holder": map[string]any{"name": "Crash Test", "email": "crash@example.com"},
		"services": []map[string]any{
			{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-03-31", year)},
			{"kind": "users", "quantity": 1, "expiresOn": fmt.Sprintf("%d-01-31", year)},
		},
	}
}
