package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// countingStore counts, per stream, what the command path asks of the real store under it:
// reads of the stream, checks of its last version, appends.
type countingStore struct {
	*jetstream.Store
	mu     sync.Mutex
	counts map[string]int // "<op> <stream>"
}

func (s *countingStore) count(op, stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[op+" "+stream]++
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Envelope, error) {
	s.count("read", stream)
	return s.Store.ReadStream(ctx, stream, from)
}

func (s *countingStore) LastVersion(ctx context.Context, stream string) (uint64, uint64, bool, error) {
	s.count("last", stream)
	return s.Store.LastVersion(ctx, stream)
}

func (s *countingStore) Append(ctx context.Context, stream string, exp eventstore.Expected, evs ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.count("append", stream)
	return s.Store.Append(ctx, stream, exp, evs...)
}

// take answers the counts since the last take, and starts again from zero.
func (s *countingStore) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	s.counts = map[string]int{}
	return c
}

// One load per command: the owner check runs on the state the command is decided on, in
// the command's own load. On a shared store (replicas: every load asks the stream's last
// version) a command on a cached order costs one check of it and one append; a refused
// one (another customer's order, an unknown one, the wrong state) costs its one load and
// writes nothing, and answers as it always has.
func TestOneLoadPerCommand(t *testing.T) {
	_, js := jstest.Start(t, jstest.Relaxed)
	store := &countingStore{Store: js, counts: map[string]int{}}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tokens.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.New(command.New(store, command.Options{Shared: true}), httpapi.Options{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &env{t: t, url: srv.URL, key: key, hc: &http.Client{Timeout: 30 * time.Second}}

	_, orderID := e.newOrder("cust-1", "app")
	order := eventstore.StreamName(command.OrderCategory, uuid.MustParse(orderID))
	o := "/v1/orders/" + orderID
	cu, other := e.token(tokens.RoleCustomer, "cust-1"), e.token(tokens.RoleCustomer, "cust-2")
	loads := func(what, stream string, want map[string]int) {
		t.Helper()
		got := store.take()
		for op, n := range want {
			if got[op+" "+stream] != n {
				t.Errorf("%s: %d %s of %s, want %d (all: %v)", what, got[op+" "+stream], op, stream, n, got)
			}
		}
		for k, n := range got {
			if !strings.HasSuffix(k, stream) {
				t.Errorf("%s: %d %s: another stream touched", what, n, k)
			}
		}
	}

	// Opening an order on a subscription: the caller's check and the first decision share
	// one load; taking the order slot and pricing after it are one each.
	store.take()
	sub2 := e.openSubscription("cust-1")
	store.take()
	r := must(t, e.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub2, "gb": 1, "channel": "app"}), http.StatusCreated)
	got := store.take()
	if n := got["last "+eventstore.StreamName(command.SubscriptionCategory, uuid.MustParse(sub2))]; n != 3 {
		t.Errorf("opening an order: %d loads of the subscription, want 3 (check and decide, reserve, price): %v", n, got)
	}
	must(t, e.do("POST", "/v1/orders/"+r.str(t, "orderId")+"/cancel", cu, nil), http.StatusOK)

	store.take()
	must(t, e.do("POST", o+"/co-termination", cu, map[string]any{"enabled": false}), http.StatusOK)
	loads("toggle", order, map[string]int{"last": 1, "read": 0, "append": 1})
	must(t, e.do("POST", o+"/modify", cu, map[string]any{"gb": 2}), http.StatusOK)
	loads("modify", order, map[string]int{"last": 1, "read": 0, "append": 1})

	wantProblem(t, e.do("POST", o+"/checkout", other, nil), http.StatusNotFound, "unknown-order")
	loads("another customer's order", order, map[string]int{"last": 1, "read": 0, "append": 0})
	wantProblem(t, e.do("POST", o+"/confirm", cu, confirmBody()), http.StatusConflict, "order-not-at-checkout")
	loads("the wrong state", order, map[string]int{"last": 1, "read": 0, "append": 0})
	unknown := uuid.New()
	wantProblem(t, e.do("POST", "/v1/orders/"+unknown.String()+"/checkout", cu, nil), http.StatusNotFound, "unknown-order")
	loads("an unknown order", eventstore.StreamName(command.OrderCategory, unknown), map[string]int{"read": 1, "append": 0})

	// A handler that has not seen the order reads it once, and appends on what it read.
	e2 := &env{t: t, url: "", key: key, hc: e.hc}
	api2, err := httpapi.New(command.New(store, command.Options{Shared: true}), httpapi.Options{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(api2)
	t.Cleanup(srv2.Close)
	e2.url = srv2.URL
	must(t, e2.do("POST", o+"/checkout", cu, nil), http.StatusOK)
	loads("checkout on another replica", order, map[string]int{"last": 0, "read": 1, "append": 1})
	// Back on the first, whose cached order is now stale: checked, caught up, appended.
	v := must(t, e.do("POST", o+"/payment-method", cu, map[string]any{"method": "card"}), http.StatusOK)
	loads("payment method on a stale cache", order, map[string]int{"last": 1, "read": 1, "append": 1})
	if got := fmt.Sprint(v.json(t)["version"]); got != "4" {
		t.Fatalf("version %s after the payment method, want 4", got)
	}
}

// BenchmarkSharedOrderCommand: a customer's command over HTTP on a shared store (replicas),
// the order cached; requests/op counts the messages sent to the NATS server per command.
func BenchmarkSharedOrderCommand(b *testing.B) {
	emb, js := jstest.Start(b, jstest.Relaxed)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth, err := tokens.NewVerifier(pub)
	if err != nil {
		b.Fatal(err)
	}
	cmds := command.New(js, command.Options{Shared: true})
	api, err := httpapi.New(cmds, httpapi.Options{Auth: auth})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api)
	b.Cleanup(srv.Close)
	sub := uuid.New()
	if _, _, err := cmds.ExecuteSubscription(b.Context(), sub, domain.OpenSubscription{
		SubscriptionID: sub, OwnerID: "cust-1", Holder: domain.Holder{Name: "Mario", Email: "m@example.com"}, Language: "it",
		Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: domain.DateOf(time.Now()).AddMonths(6)}},
	}, command.Meta{Actor: "op"}, nil); err != nil {
		b.Fatal(err)
	}
	id, _, _, err := cmds.OpenOrder(b.Context(), sub, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, command.Meta{Actor: "cust-1"})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokens.Mint(key, tokens.RoleCustomer, "cust-1", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	hc := srv.Client()
	sent := emb.Conn.Stats().OutMsgs
	i := 0
	for b.Loop() {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/orders/"+id.String()+"/co-termination",
			strings.NewReader(fmt.Sprintf(`{"enabled":%v}`, i%2 == 1)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
		i++
	}
	b.ReportMetric(float64(emb.Conn.Stats().OutMsgs-sent)/float64(b.N), "requests/op")
}
