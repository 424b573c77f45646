package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
)

// keyed is one owner's pair of keyed requests: open a subscription, then order space on it.
type keyed struct {
	owner            string
	subSent, ordSent bool
	sub, ord         *reply // the first answers, nil when the crash swallowed them
}

type reply struct {
	status   int
	body     []byte
	replayed bool
	took     time.Duration
}

func (r *reply) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	s, _ := m[name].(string)
	return s
}

// send posts body with an Idempotency-Key; nil when no answer came (the server died).
func send(ctx context.Context, hc *http.Client, url, token, key string, body any) *reply {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil
	}
	return &reply{status: res.StatusCode, body: out, replayed: res.Header.Get("Idempotent-Replayed") == "true", took: time.Since(start)}
}

// orderd is killed with SIGKILL while 60 clients open subscriptions and order space, each
// request with its own Idempotency-Key. After a restart every client retries with the same
// key and body: each retry is answered 2xx within a client's 30 s, with the first answer
// where one came; no owner has two subscriptions, and no slot is reserved without an order.
func TestKeyedRequestsRetriedAfterSIGKILL(t *testing.T) {
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
	base := "http://" + addr
	d := startOrderd(t, bin, data, addr)
	op := mintToken(t, bin, data, "operator", "idem-operator")

	const clients = 60
	var (
		mu   sync.Mutex
		jobs []*keyed
	)
	answered := make(chan struct{}, 100_000)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				j := &keyed{owner: fmt.Sprintf("idem-%d-%d", c, i), subSent: true}
				mu.Lock()
				jobs = append(jobs, j)
				mu.Unlock()
				r := send(ctx, hc, base+"/v1/subscriptions", op, "open-"+j.owner, openBody(j.owner))
				mu.Lock()
				j.sub = r
				mu.Unlock()
				if r == nil || r.status != http.StatusCreated {
					return
				}
				answered <- struct{}{}
				cu := mintTokenFast(t, bin, data, j.owner)
				mu.Lock()
				j.ordSent = true
				mu.Unlock()
				r = send(ctx, hc, base+"/v1/orders", cu, "order-"+j.owner,
					map[string]any{"subscriptionId": j.sub.field("subscriptionId"), "channel": "app"})
				mu.Lock()
				j.ord = r
				mu.Unlock()
				if r == nil || r.status != http.StatusCreated {
					return
				}
				answered <- struct{}{}
			}
		})
	}
	// Kill once the clients are well under way, with about 60 requests in flight.
	killAfter(t, d, answered, 4*clients, "answers")
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for _, j := range jobs {
		if j.sub == nil || (j.ordSent && j.ord == nil) {
			lost++
		}
		if (j.sub != nil && j.sub.status != http.StatusCreated) || (j.ord != nil && j.ord.status != http.StatusCreated) {
			t.Fatalf("%s: answered before the crash with a refusal: %+v %+v", j.owner, j.sub, j.ord)
		}
	}
	t.Logf("killed with %d owners under way, %d answers swallowed by the crash", len(jobs), lost)

	d = startOrderd(t, bin, data, addr)
	// Every client retries at once, with a client's usual timeout.
	var slowest time.Duration
	replayed := 0
	work := make(chan *keyed)
	var rmu sync.Mutex
	var rwg sync.WaitGroup
	for range clients {
		rwg.Go(func() {
			hc := &http.Client{Timeout: 30 * time.Second}
			for j := range work {
				check := func(what string, first, again *reply) bool {
					if again == nil || again.status != http.StatusCreated {
						t.Errorf("%s %s retried: %+v", j.owner, what, again)
						return false
					}
					if first != nil && !bytes.Equal(first.body, again.body) {
						t.Errorf("%s %s retried: another answer\nfirst %s\nagain %s", j.owner, what, first.body, again.body)
					}
					rmu.Lock()
					slowest = max(slowest, again.took)
					if again.replayed {
						replayed++
					}
					rmu.Unlock()
					return true
				}
				s := send(context.Background(), hc, base+"/v1/subscriptions", op, "open-"+j.owner, openBody(j.owner))
				if !check("subscription", j.sub, s) {
					continue
				}
				cu := mintTokenFast(t, bin, data, j.owner)
				o := send(context.Background(), hc, base+"/v1/orders", cu, "order-"+j.owner,
					map[string]any{"subscriptionId": s.field("subscriptionId"), "channel": "app"})
				if check("order", j.ord, o) && j.ord != nil && o.field("orderId") != j.ord.field("orderId") {
					t.Errorf("%s: order %s, first answered %s", j.owner, o.field("orderId"), j.ord.field("orderId"))
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	rwg.Wait()
	if slowest >= 30*time.Second {
		t.Errorf("slowest retry took %v", slowest)
	}
	t.Logf("%d owners retried: slowest retry %v, %d answers replayed", len(jobs), slowest, replayed)
	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("orderd did not stop cleanly: %v", err)
	}

	// The log itself: one subscription per owner, one order per subscription, every
	// reserved slot held by an order that exists.
	_, store := jstest.Start(t, jetstream.EmbeddedConfig{Dir: filepath.Join(data, "jetstream"), RelaxedSync: true})
	codec := eventstore.DomainCodec()
	subs := map[uuid.UUID]domain.Subscription{}
	perOwner := map[string]int{}
	orders := map[uuid.UUID]int{}
	for after := uint64(0); ; {
		page, err := store.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, env := range page {
			if env.Type == eventstore.LogCheckpointType {
				continue // the log's signed head, not a domain event
			}
			ev, err := codec.DecodeDomain(env)
			if err != nil {
				t.Fatal(err)
			}
			_, id, _ := eventstore.ParseStream(env.Stream)
			switch e := ev.(type) {
			case domain.SubscriptionOpened:
				perOwner[e.OwnerID]++
			case domain.SpaceIncreaseRequested:
				orders[e.OrderID]++
			}
			if env.Stream == eventstore.StreamName("subscription", id) {
				subs[id] = domain.EvolveSubscription(subs[id], ev)
			}
		}
		after = page[len(page)-1].Position
	}
	for _, j := range jobs {
		if perOwner[j.owner] != 1 {
			t.Errorf("owner %s has %d subscriptions", j.owner, perOwner[j.owner])
		}
	}
	for id, s := range subs {
		if s.OpenOrder != uuid.Nil && orders[s.OpenOrder] != 1 {
			t.Errorf("subscription %s holds its slot for order %s, which has %d orders in the log", id, s.OpenOrder, orders[s.OpenOrder])
		}
	}
	if len(orders) != len(jobs) {
		t.Errorf("%d orders for %d owners", len(orders), len(jobs))
	}
}
