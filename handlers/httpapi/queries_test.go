package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
	"github.com/einvoice/spaceorders/projections"
)

// confirm walks a new order of owner to confirmation with method and returns the ids, the
// total and the confirmation's log position.
func (e *env) confirm(owner, method string) (subID, orderID string, total int64, pos uint64) {
	e.t.Helper()
	subID, orderID = e.newOrder(owner, "app")
	cu := e.token(tokens.RoleCustomer, owner)
	must(e.t, e.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil), 200)
	must(e.t, e.do("POST", "/v1/orders/"+orderID+"/payment-method", cu, map[string]any{"method": method}), 200)
	r := must(e.t, e.do("POST", "/v1/orders/"+orderID+"/confirm", cu, confirmBody()), 200)
	m := r.json(e.t)
	return subID, orderID, int64(m["quote"].(map[string]any)["totalCents"].(float64)), uint64(m["position"].(float64))
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return v
}

// readCSV parses a CSV answer, checking its media type and file name, into rows by header.
func readCSV(t *testing.T, r resp) []map[string]string {
	t.Helper()
	if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV answer %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") || !strings.HasSuffix(cd, ".csv") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, r.body)
	}
	if !bytes.Contains(r.body, []byte("\r\n")) {
		t.Fatalf("RFC 4180 lines end in CRLF: %q", r.body)
	}
	var out []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		out = append(out, row)
	}
	return out
}

// cents reads a CSV amount pair (euros with two decimals, and cents) and checks they agree.
func cents(t *testing.T, row map[string]string, name string) int64 {
	t.Helper()
	c, err := strconv.ParseInt(row[name+"_cents"], 10, 64)
	if err != nil {
		t.Fatalf("%s_cents %q", name, row[name+"_cents"])
	}
	if eur := row[name+"_eur"]; eur != fmt.Sprintf("%d.%02d", c/100, c%100) {
		t.Fatalf("%s_eur %q does not say %d cents", name, eur, c)
	}
	return c
}

// After a seed flow, finance reads pending payments, their summary, quotas and expiries over
// HTTP, right after the commands (?after=), in JSON and in CSV, and the totals add up.
func TestReadModelQueriesAfterTheCommands(t *testing.T) {
	e := start(t, nil)
	fin := e.token(tokens.RoleFinance, "fin")
	subA, orderA, totalA, _ := e.confirm("cust-a", "card")
	subB, orderB, totalB, posB := e.confirm("cust-b", "bank-transfer")
	after := fmt.Sprintf("?after=%d", posB)

	// Pending payments: both orders, oldest first, with their amounts.
	page := decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments"+after, fin, nil), 200))
	if len(page.Orders) != 2 || page.Orders[0].OrderID.String() != orderA || page.Orders[1].OrderID.String() != orderB ||
		page.Orders[0].AmountDueCents != totalA || page.Orders[1].AmountDueCents != totalB || page.Orders[1].Method != "bank-transfer" {
		t.Fatalf("pending: %+v", page)
	}
	byMethod := decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments?method=card&limit=10", fin, nil), 200))
	if len(byMethod.Orders) != 1 || byMethod.Orders[0].OrderID.String() != orderA {
		t.Fatalf("pending by method: %+v", byMethod)
	}
	one := decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments?limit=1", fin, nil), 200))
	if len(one.Orders) != 1 || one.NextCursor == "" {
		t.Fatalf("first page of one: %+v", one)
	}
	two := decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments?limit=1&cursor="+one.NextCursor, fin, nil), 200))
	if len(two.Orders) != 1 || two.Orders[0].OrderID.String() != orderB || two.NextCursor != "" {
		t.Fatalf("second page: %+v", two)
	}
	old := decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments?minAgeDays=3", fin, nil), 200))
	if len(old.Orders) != 0 {
		t.Fatalf("nothing is 3 days old: %+v", old)
	}
	for _, bad := range []string{"?minAgeDays=-1", "?limit=x", "?cursor=nonsense", "?after=soon"} {
		wantProblem(t, e.do("GET", "/v1/pending-payments"+bad, fin, nil), 400, httpapi.CodeMalformed)
	}

	// The same list in CSV: the same orders and numbers.
	rows := readCSV(t, e.do("GET", "/v1/pending-payments", fin, nil, "Accept", "text/csv"))
	if len(rows) != 2 {
		t.Fatalf("CSV rows: %v", rows)
	}
	for i, row := range rows {
		o := page.Orders[i]
		if row["order_id"] != o.OrderID.String() || cents(t, row, "amount_due") != o.AmountDueCents ||
			cents(t, row, "remaining") != o.RemainingCents || cents(t, row, "paid") != 0 || row["method"] != o.Method {
			t.Fatalf("CSV row %v, JSON %+v", row, o)
		}
	}

	// Summary: each grouping adds up to the total, which is the sum of the orders.
	sum := decode[projections.PendingSummary](t, must(t, e.do("GET", "/v1/pending-payments/summary"+after, fin, nil), 200))
	if sum.Total.Count != 2 || sum.Total.AmountDueCents != totalA+totalB || sum.Total.RemainingCents != totalA+totalB {
		t.Fatalf("summary total: %+v", sum)
	}
	var methods, ages int64
	for _, m := range sum.ByMethod {
		methods += m.AmountDueCents
	}
	for _, b := range sum.ByAge {
		ages += b.AmountDueCents
	}
	if methods != sum.Total.AmountDueCents || ages != sum.Total.AmountDueCents || len(sum.ByMethod) != 2 {
		t.Fatalf("groupings do not add up: methods %d, ages %d, total %d", methods, ages, sum.Total.AmountDueCents)
	}
	srows := readCSV(t, e.do("GET", "/v1/pending-payments/summary", fin, nil, "Accept", "text/csv"))
	var csvMethods int64
	for _, row := range srows {
		switch row["group"] {
		case "method":
			csvMethods += cents(t, row, "amount_due")
		case "total":
			if cents(t, row, "amount_due") != sum.Total.AmountDueCents || row["count"] != "2" {
				t.Fatalf("CSV total %v, JSON %+v", row, sum.Total)
			}
		}
	}
	if csvMethods != sum.Total.AmountDueCents {
		t.Fatalf("CSV methods add to %d, want %d", csvMethods, sum.Total.AmountDueCents)
	}

	// Quota: the customer reads its own; another customer's is unknown; staff read all.
	q := decode[projections.QuotaView](t, must(t, e.do("GET", "/v1/subscriptions/"+subA+"/quota"+after, e.token(tokens.RoleCustomer, "cust-a"), nil), 200))
	if q.SubscriptionID.String() != subA || q.BaseGB != 1 || q.PendingGB != 1 || q.PurchasedGB != 0 {
		t.Fatalf("quota before payment: %+v", q)
	}
	wantProblem(t, e.do("GET", "/v1/subscriptions/"+subA+"/quota", e.token(tokens.RoleCustomer, "cust-b"), nil), 404, "unknown-subscription")
	wantProblem(t, e.do("GET", "/v1/subscriptions/"+subA+"/expiries", e.token(tokens.RoleCustomer, "cust-b"), nil), 404, "unknown-subscription")
	wantProblem(t, e.do("GET", "/v1/subscriptions/00000000-0000-0000-0000-000000000001/quota", fin, nil), 404, "unknown-subscription")
	qrows := readCSV(t, e.do("GET", "/v1/subscriptions/"+subB+"/quota", fin, nil, "Accept", "text/csv"))
	if len(qrows) != 1 || qrows[0]["subscription_id"] != subB || qrows[0]["pending_gb"] != "1" {
		t.Fatalf("quota CSV: %v", qrows)
	}

	// Expiries: the subscription's three services; across subscriptions within a window.
	ex := decode[httpapi.SubscriptionExpiries](t, must(t, e.do("GET", "/v1/subscriptions/"+subA+"/expiries", e.token(tokens.RoleCustomer, "cust-a"), nil), 200))
	if len(ex.Expiries) != 3 {
		t.Fatalf("expiries: %+v", ex)
	}
	op := e.token(tokens.RoleOperator, "op")
	for _, w := range []string{"800d", "800"} {
		all := decode[httpapi.ExpiriesWithin](t, must(t, e.do("GET", "/v1/expiries?within="+w, op, nil), 200))
		if all.WithinDays != 800 || len(all.Expiries) != 6 {
			t.Fatalf("within %s: %d expiries, want 6", w, len(all.Expiries))
		}
	}
	for _, bad := range []string{"x", "-1d", "30days", "99999"} {
		wantProblem(t, e.do("GET", "/v1/expiries?within="+bad, op, nil), 400, httpapi.CodeMalformed)
	}
	if rows := readCSV(t, e.do("GET", "/v1/expiries?within=800d", fin, nil, "Accept", "text/csv")); len(rows) != 6 {
		t.Fatalf("expiries CSV: %v", rows)
	}

	// Read your writes: right after the payment, the quota has the space and the order has
	// left the pending list.
	r := must(t, e.do("POST", "/v1/orders/"+orderA+"/payments", e.token(tokens.RolePayments, "gw"),
		map[string]any{"amountCents": totalA, "method": "card", "reference": "TRN-A"}), 200)
	paid := fmt.Sprintf("?after=%d", uint64(r.json(t)["position"].(float64)))
	page = decode[projections.PendingPage](t, must(t, e.do("GET", "/v1/pending-payments"+paid, fin, nil), 200))
	if len(page.Orders) != 1 || page.Orders[0].OrderID.String() != orderB {
		t.Fatalf("after payment, pending: %+v", page)
	}
	e.waitQuota(subA, 1)

	// Status of the models, in the shape orderctl verify --server decodes.
	var status map[string]json.RawMessage
	if err := json.Unmarshal(must(t, e.do("GET", "/v1/projections"+paid, op, nil), 200).body, &status); err != nil || len(status) != 1 {
		t.Fatalf("projections answer: %v %v", status, err)
	}
	st := decode[httpapi.ProjectionsAnswer](t, must(t, e.do("GET", "/v1/projections", fin, nil), 200))
	if len(st.Models) != len(projections.ModelNames) {
		t.Fatalf("models: %+v", st)
	}
	for _, m := range st.Models {
		if m.Position == 0 || m.Digest == "" {
			t.Fatalf("model status: %+v", m)
		}
	}
	// A rebuild from zero answers when done, with the same digest.
	rb := decode[projections.ModelStatus](t, must(t, e.do("POST", "/v1/projections/pending-payment/rebuild", op, nil), 200))
	for _, m := range st.Models {
		if m.Name == rb.Name && m.Position == rb.Position && m.Digest != rb.Digest {
			t.Fatalf("rebuilt %+v, live was %+v", rb, m)
		}
	}
	wantProblem(t, e.do("POST", "/v1/projections/nonsense/rebuild", op, nil), 404, httpapi.CodeNotFound)
}

// waitQuota: the quota read model shows gb purchased (the grant may follow the payment).
func (e *env) waitQuota(subID string, gb int) {
	e.t.Helper()
	fin := e.token(tokens.RoleFinance, "fin")
	testwait.For(e.t, "quota shows the purchased space", func() bool {
		var q projections.QuotaView
		_ = json.Unmarshal(e.do("GET", "/v1/subscriptions/"+subID+"/quota", fin, nil).body, &q)
		return q.PurchasedGB == gb && q.PendingGB == 0
	})
}

// A position the models cannot reach within the wait answers 503 with Retry-After.
func TestReadYourWritesGivesUpWithRetryAfter(t *testing.T) {
	e := startWith(t, nil, func(c *app.Config) { c.ReadWait = 150 * time.Millisecond })
	fin := e.token(tokens.RoleFinance, "fin")
	_, _, _, pos := e.confirm("cust-wait", "card")
	must(t, e.do("GET", fmt.Sprintf("/v1/pending-payments/summary?after=%d", pos), fin, nil), 200)
	start := time.Now()
	r := e.do("GET", fmt.Sprintf("/v1/pending-payments/summary?after=%d", pos+1_000_000), fin, nil)
	wantProblem(t, r, http.StatusServiceUnavailable, httpapi.CodeNotCaughtUp)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("gave up after %s, want about the configured 150ms", d)
	}
}
