package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// ids collects field of every item of the list named list in a JSON answer.
func ids(t *testing.T, r resp, list, field string) []string {
	t.Helper()
	items, ok := r.json(t)[list].([]any)
	if !ok {
		t.Fatalf("no %q list in %s", list, r.body)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.(map[string]any)[field].(string))
	}
	return out
}

// follow reads a list page by page through each answer's next, and returns every id.
func (e *env) follow(path, token, list, field string) (all []string, pages int) {
	e.t.Helper()
	for path != "" {
		r := must(e.t, e.do("GET", path, token, nil), 200)
		all = append(all, ids(e.t, r, list, field)...)
		pages++
		next, _ := r.json(e.t)["next"].(string)
		if next != "" && r.header.Get("Link") != fmt.Sprintf("<%s>; rel=\"next\"", next) {
			e.t.Fatalf("Link %q, next %q", r.header.Get("Link"), next)
		}
		path = next
	}
	return all, pages
}

func TestListsOfSubscriptionsAndOrders(t *testing.T) {
	e := start(t, nil)
	subA1, cartA := e.newOrder("cust-a", "app")
	subA2, confirmedA, _ := e.confirmedOrder("cust-a")
	subA3 := e.openSubscription("cust-a")
	subB, cartB := e.newOrder("cust-b", "panel")
	after := fmt.Sprintf("after=%d", e.head())
	custA, custB := e.token(tokens.RoleCustomer, "cust-a"), e.token(tokens.RoleCustomer, "cust-b")
	op, fin := e.token(tokens.RoleOperator, "op"), e.token(tokens.RoleFinance, "fin")

	// A customer sees its own subscriptions, in the order they were opened, and nobody else's.
	r := must(t, e.do("GET", "/v1/subscriptions?"+after, custA, nil), 200)
	if got := ids(t, r, "subscriptions", "subscriptionId"); !slices.Equal(got, []string{subA1, subA2, subA3}) {
		t.Fatalf("cust-a's subscriptions %v, want %v", got, []string{subA1, subA2, subA3})
	}
	if got := ids(t, must(t, e.do("GET", "/v1/subscriptions?ownerId=cust-b", custA, nil), 200), "subscriptions", "subscriptionId"); len(got) != 0 {
		t.Fatalf("cust-a asking for cust-b's subscriptions got %v", got)
	}
	if got := ids(t, must(t, e.do("GET", "/v1/subscriptions?ownerId=cust-b", op, nil), 200), "subscriptions", "subscriptionId"); !slices.Equal(got, []string{subB}) {
		t.Fatalf("an operator asking for cust-b's subscriptions got %v", got)
	}
	// Staff page through every subscription.
	all, pages := e.follow("/v1/subscriptions?limit=3", op, "subscriptions", "subscriptionId")
	if !slices.Equal(all, []string{subA1, subA2, subA3, subB}) || pages != 2 {
		t.Fatalf("paged subscriptions %v in %d pages", all, pages)
	}

	// Orders: a customer's own, filtered by subscription and status.
	if got := ids(t, must(t, e.do("GET", "/v1/orders", custA, nil), 200), "orders", "orderId"); !slices.Equal(got, []string{cartA, confirmedA}) {
		t.Fatalf("cust-a's orders %v", got)
	}
	if got := ids(t, must(t, e.do("GET", "/v1/orders?status=confirmed", custA, nil), 200), "orders", "orderId"); !slices.Equal(got, []string{confirmedA}) {
		t.Fatalf("cust-a's confirmed orders %v", got)
	}
	if got := ids(t, must(t, e.do("GET", "/v1/orders?subscriptionId="+subA1, custA, nil), 200), "orders", "orderId"); !slices.Equal(got, []string{cartA}) {
		t.Fatalf("cust-a's orders of %s: %v", subA1, got)
	}
	if got := ids(t, must(t, e.do("GET", "/v1/orders?subscriptionId="+subA1, custB, nil), 200), "orders", "orderId"); len(got) != 0 {
		t.Fatalf("cust-b sees cust-a's orders: %v", got)
	}
	if got := ids(t, must(t, e.do("GET", "/v1/orders?status=cart", fin, nil), 200), "orders", "orderId"); !slices.Equal(got, []string{cartA, cartB}) {
		t.Fatalf("carts %v", got)
	}
	o := must(t, e.do("GET", "/v1/orders?status=confirmed", fin, nil), 200).json(t)["orders"].([]any)[0].(map[string]any)
	if o["channel"] != "panel" || o["paymentMethod"] != "card" || o["ownerId"] != "cust-a" || o["totalCents"].(float64) <= 0 {
		t.Fatalf("order summary %v", o)
	}
	all, pages = e.follow("/v1/orders?limit=1", fin, "orders", "orderId")
	if !slices.Equal(all, []string{cartA, confirmedA, cartB}) || pages != 3 {
		t.Fatalf("paged orders %v in %d pages", all, pages)
	}

	// CSV: a header, the rows, and the next page in the headers.
	r = must(t, e.do("GET", "/v1/orders?limit=2", fin, nil, "Accept", "text/csv"), 200)
	lines := strings.Split(strings.TrimSpace(string(r.body)), "\r\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "order_id,") || r.header.Get(httpapi.HeaderNextCursor) == "" ||
		!strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("CSV page: %v\n%s", r.header, r.body)
	}

	// Refusals: unknown parameters, bad values, bad cursors, over-long pages.
	for _, path := range []string{
		"/v1/orders?stauts=paid", "/v1/orders?status=shipped", "/v1/orders?subscriptionId=42",
		"/v1/orders?cursor=nope", "/v1/orders?limit=1001", "/v1/orders?limit=-1",
		"/v1/subscriptions?owner=cust-a", "/v1/subscriptions?cursor=AAAA",
		"/v1/expiries?within=30d&page=2", "/v1/expiries?limit=5000", "/v1/expiries?cursor=bad",
		"/v1/pending-payments?methd=card", "/v1/pending-payments?limit=1001", "/v1/pending-payments/summary?x=1",
	} {
		wantProblem(t, e.do("GET", path, fin, nil), http.StatusBadRequest, httpapi.CodeMalformed)
	}
}

// /v1/expiries pages with limit and cursor instead of answering everything.
func TestExpiriesArePaged(t *testing.T) {
	e := start(t, nil)
	for i := range 4 {
		e.openSubscription(fmt.Sprintf("cust-%d", i))
	}
	op := e.token(tokens.RoleOperator, "op")
	// Each subscription has three services; a year-wide window holds them all.
	whole := must(t, e.do("GET", fmt.Sprintf("/v1/expiries?within=730d&limit=1000&after=%d", e.head()), op, nil), 200)
	want := ids(t, whole, "expiries", "expiresOn")
	if len(want) != 12 || whole.json(t)["next"] != nil {
		t.Fatalf("whole list %d rows: %s", len(want), whole.body)
	}
	got, pages := e.follow("/v1/expiries?within=730d&limit=5", op, "expiries", "expiresOn")
	if !slices.Equal(got, want) || pages != 3 {
		t.Fatalf("paged %v in %d pages, want %v", got, pages, want)
	}
	r := must(t, e.do("GET", "/v1/expiries?within=730d&limit=5", op, nil), 200)
	if n := len(ids(t, r, "expiries", "expiresOn")); n != 5 || r.str(t, "nextCursor") == "" {
		t.Fatalf("limit=5 answered %d rows: %s", n, r.body)
	}
}
