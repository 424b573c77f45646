package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/app/apptest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// startIn starts the product on the data folder dir; stop shuts it down (the folder holds
// one server at a time, so a restart stops the first before starting the second).
func startIn(t *testing.T, dir string) (e *env, stop func()) {
	t.Helper()
	cfg := apptest.Config(dir)
	cfg.NoMailer = true
	r := apptest.Start(t, cfg, nil)
	return &env{t: t, a: r.App, url: r.URL(), key: r.Key, hc: &http.Client{Timeout: 30 * time.Second}}, r.Stop
}

// dropBucket deletes the bucket of idempotency answers, as a replica with a fresh NATS, or
// a lost cache, would see it: only the log is left to answer retries.
func dropBucket(t *testing.T, e *env) {
	t.Helper()
	js, err := natsjs.New(e.a.NATS)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(context.Background(), httpapi.IdempotencyBucket); err != nil {
		t.Fatal(err)
	}
}

// The key determines the ids: after a restart with no cached answer at all, a retry opens
// nothing twice and gets its first answer back, rebuilt from the log.
func TestRetryAfterRestartIsAnsweredFromTheLog(t *testing.T) {
	dir := t.TempDir()
	e1, stop := startIn(t, dir)
	op := e1.token(tokens.RoleOperator, "op-1")
	cu := e1.token(tokens.RoleCustomer, "cust-log")
	first := must(t, e1.do("POST", "/v1/subscriptions", op, subscriptionBody("cust-log"), "Idempotency-Key", "open-1"), http.StatusCreated)
	subID := first.str(t, "subscriptionId")
	order := must(t, e1.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "app"}, "Idempotency-Key", "order-1"), http.StatusCreated)
	orderID := order.str(t, "orderId")
	checkout := must(t, e1.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil, "Idempotency-Key", "co-1"), http.StatusOK)
	stop()

	e2, _ := startIn(t, dir)
	dropBucket(t, e2)
	head := e2.head()
	for _, c := range []struct {
		path, key string
		token     string
		body      any
		want      resp
	}{
		{"/v1/subscriptions", "open-1", op, subscriptionBody("cust-log"), first},
		{"/v1/orders", "order-1", cu, map[string]any{"subscriptionId": subID, "channel": "app"}, order},
		{"/v1/orders/" + orderID + "/checkout", "co-1", cu, nil, checkout},
	} {
		again := e2.do("POST", c.path, c.token, c.body, "Idempotency-Key", c.key)
		if again.status != c.want.status || string(again.body) != string(c.want.body) ||
			again.header.Get("Location") != c.want.header.Get("Location") || again.header.Get("ETag") != c.want.header.Get("ETag") {
			t.Errorf("%s retried after a restart:\n got %d %s\nwant %d %s", c.path, again.status, again.body, c.want.status, c.want.body)
		}
	}
	if e2.head() != head {
		t.Fatalf("the retries appended: head %d, was %d", e2.head(), head)
	}
	if n := countTypes(e2.events("subscription", subID), "SubscriptionOpened"); n != 1 {
		t.Fatalf("%d SubscriptionOpened", n)
	}
}

// A process died between reserving the subscription's order slot and creating the order:
// the retry of the same request finds the slot its own and creates the order, at once.
func TestRetryCompletesAnOrderWhoseAttemptDiedAfterTheSlot(t *testing.T) {
	e := start(t, nil)
	subID := e.openSubscription("cust-half")
	cu := e.token(tokens.RoleCustomer, "cust-half")
	// What the dead attempt wrote: the slot, under the ids its key derives.
	key := command.IdempotencyKey(string(tokens.RoleCustomer), "cust-half", "POST /v1/orders", "half-1")
	orderID := command.DerivedID(key, "order")
	if _, _, err := e.a.Commands.ExecuteSubscription(context.Background(), uuid.MustParse(subID),
		domain.ReserveOrderSlot{OrderID: orderID}, command.Meta{Key: key, Actor: "cust-half"}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := must(t, e.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "panel"}, "Idempotency-Key", "half-1"), http.StatusCreated)
	if got := r.str(t, "orderId"); got != orderID.String() {
		t.Fatalf("order %s, want the attempt's %s", got, orderID)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the retry took %v", d)
	}
	sub := e.events("subscription", subID)
	if n := countTypes(sub, "OrderSlotReserved"); n != 1 {
		t.Fatalf("%d OrderSlotReserved, want 1", n)
	}
	if n := countTypes(sub, "OrderSlotReleased"); n != 0 {
		t.Fatalf("the slot was released %d times", n)
	}
}

// The first attempt's order was created, paid and granted, and another order is in
// progress now: the retry still answers the first order, never "order in progress".
func TestRetryIsNotRefusedByWhatCameAfterItsSuccess(t *testing.T) {
	dir := t.TempDir()
	e1, stop := startIn(t, dir)
	subID := e1.openSubscription("cust-moved")
	cu := e1.token(tokens.RoleCustomer, "cust-moved")
	body := map[string]any{"subscriptionId": subID, "channel": "app"}
	first := must(t, e1.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "moved-1"), http.StatusCreated)
	orderID := first.str(t, "orderId")
	must(t, e1.do("POST", "/v1/orders/"+orderID+"/cancel", cu, map[string]any{}), http.StatusOK)
	testwait.For(t, "slot released", func() bool {
		return countTypes(e1.events("subscription", subID), "OrderSlotReleased") == 1
	})
	second := must(t, e1.do("POST", "/v1/orders", cu, body), http.StatusCreated)
	stop()

	e2, _ := startIn(t, dir)
	dropBucket(t, e2)
	again := must(t, e2.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "moved-1"), http.StatusCreated)
	if again.str(t, "orderId") != orderID || string(again.body) != string(first.body) {
		t.Fatalf("retry answered %s, want the first answer %s (another order, %s, is in progress)", again.body, first.body, second.str(t, "orderId"))
	}
}

// A refusal because another order is in progress is not kept under the key: once that
// order ends, the same request succeeds.
func TestOrderInProgressIsNotKeptUnderTheKey(t *testing.T) {
	e := start(t, nil)
	subID := e.openSubscription("cust-busy")
	cu := e.token(tokens.RoleCustomer, "cust-busy")
	body := map[string]any{"subscriptionId": subID, "channel": "app"}
	busy := must(t, e.do("POST", "/v1/orders", cu, body), http.StatusCreated)
	wantProblem(t, e.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "busy-1"), http.StatusConflict, "order-in-progress")
	must(t, e.do("POST", "/v1/orders/"+busy.str(t, "orderId")+"/cancel", cu, map[string]any{}), http.StatusOK)
	testwait.For(t, "retry succeeds once the slot is free", func() bool {
		return e.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "busy-1").status == http.StatusCreated
	})
}
