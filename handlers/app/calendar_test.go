package app

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// The rules of docs/RULES.md over HTTP, the whole product running, with the clock moved
// through Config.Clock: a customer tried as a new user would, on the days that matter.

// calendar is the product's clock in these tests: a Rome instant the test sets.
type calendar struct{ at atomic.Int64 }

func (c *calendar) now() time.Time { return time.Unix(0, c.at.Load()) }

// on sets the clock to 10:00 in Rome on day ("YYYY-MM-DD").
func (c *calendar) on(day string) {
	d, err := time.ParseInLocation(time.DateOnly, day, domain.Rome)
	if err != nil {
		panic(err)
	}
	c.at.Store(d.Add(10 * time.Hour).UnixNano())
}

func startCalendar(t *testing.T, start string, sweep time.Duration) (*running, *calendar, Config) {
	t.Helper()
	c := &calendar{}
	c.on(start)
	cfg := testConfig(t.TempDir())
	cfg.Clock = c.now
	cfg.SweepInterval = sweep
	return startApp(t, cfg), c, cfg
}

type svc struct {
	kind    string
	qty     int64
	expires string
}

// open opens a subscription for owner with these services.
func (r *running) open(owner string, services ...svc) string {
	r.t.Helper()
	var list []map[string]any
	for _, s := range services {
		list = append(list, map[string]any{"kind": s.kind, "quantity": s.qty, "expiresOn": s.expires})
	}
	body := map[string]any{"ownerId": owner, "language": "it",
		"holder": map[string]any{"name": "Rossi S.r.l.", "email": "amministrazione@rossi.example"}, "services": list}
	return r.must(r.do("POST", "/v1/subscriptions", r.token(tokens.RoleOperator, "op"), body), 201).field(r.t, "subscriptionId").(string)
}

// cart opens a cart on sub for owner, and answers its id.
func (r *running) cart(owner, sub string, gb int) string {
	r.t.Helper()
	return r.must(r.do("POST", "/v1/orders", r.token(tokens.RoleCustomer, owner),
		map[string]any{"subscriptionId": sub, "channel": "panel", "gb": gb}), 201).field(r.t, "orderId").(string)
}

// toForm takes a cart to the order form with a payment method.
func (r *running) toForm(owner, order, method string) {
	r.t.Helper()
	cu := r.token(tokens.RoleCustomer, owner)
	r.must(r.do("POST", "/v1/orders/"+order+"/checkout", cu, nil), 200)
	r.must(r.do("POST", "/v1/orders/"+order+"/payment-method", cu, map[string]any{"method": method}), 200)
}

func confirmBody(expected ...int64) map[string]any {
	b := map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}
	if len(expected) > 0 {
		b["expectedTotalCents"] = expected[0]
	}
	return b
}

// order is the part of an order's JSON the tests read.
type order struct {
	Status           string          `json:"status"`
	Quote            domain.Quote    `json:"quote"`
	PaidCents        int64           `json:"paidCents"`
	DueCents         int64           `json:"dueCents"`
	CreditDueCents   int64           `json:"creditDueCents"`
	Credits          []domain.Credit `json:"credits"`
	ExpiryCountsFrom string          `json:"expiryCountsFrom"`
	GrantedUntil     domain.Date     `json:"grantedUntil"`
	AbandonsOn       domain.Date     `json:"abandonsOn"`
	QuoteStale       bool            `json:"quoteStale"`
	Position         uint64          `json:"position"`
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("%d: %v: %s", a.status, err, a.body)
	}
	return v
}

func (r *running) order(id string) order {
	r.t.Helper()
	return decode[order](r.t, r.must(r.do("GET", "/v1/orders/"+id, r.token(tokens.RoleOperator, "op"), nil), 200))
}

type problem struct {
	Code           string        `json:"code"`
	Status         int           `json:"status"`
	Field          string        `json:"field"`
	Quote          *domain.Quote `json:"quote"`
	CreditDueCents *int64        `json:"creditDueCents"`
	Position       *uint64       `json:"position"`
}

func (r *running) problem(a answer, status int, code string) problem {
	r.t.Helper()
	p := decode[problem](r.t, r.must(a, status))
	if p.Code != code || a.header.Get("Content-Type") != "application/problem+json" {
		r.t.Fatalf("problem %+v, want %s: %s", p, code, a.body)
	}
	return p
}

// pay registers a payment and answers the response.
func (r *running) pay(orderID string, cents int64, ref string) answer {
	r.t.Helper()
	return r.do("POST", "/v1/orders/"+orderID+"/payments", r.token(tokens.RolePayments, "gw"),
		map[string]any{"amountCents": cents, "method": "bank-transfer", "reference": ref})
}

// Rule 1: a quote belongs to one Rome civil day.
func TestRuleAQuoteBelongsToOneRomeDayOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-05-05", time.Hour)
	sub := r.open("cust-1", svc{"base", 1, "2027-09-30"}, svc{"users", 3, "2027-06-04"})
	id := r.cart("cust-1", sub, 1)
	first := r.order(id)
	if first.Quote.OrderDate.String() != "2027-05-05" || first.ExpiryCountsFrom != "payment" {
		t.Fatalf("first quote %+v", first)
	}
	clock.on("2027-05-20")
	if !r.order(id).QuoteStale {
		t.Fatal("a quote of 5 May is not flagged stale on 20 May")
	}
	r.toForm("cust-1", id, "card")
	if q := r.order(id).Quote; q.OrderDate.String() != "2027-05-20" || q.NewExpiry.String() != "2028-05-20" {
		t.Fatalf("the order form on a later day kept %s -> %s", q.OrderDate, q.NewExpiry)
	}
	clock.on("2027-05-21")
	cu := r.token(tokens.RoleCustomer, "cust-1")
	p := r.problem(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody()), 409, "quote-changed")
	if p.Quote == nil || p.Quote.OrderDate.String() != "2027-05-21" || r.order(id).Status != "checkout" {
		t.Fatalf("confirm a day later: %+v, order %+v", p, r.order(id))
	}
	// A stale total is refused too, with the quote that holds; nothing is confirmed.
	p2 := r.problem(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody(p.Quote.TotalCents+1)), 409, "quote-changed")
	if p2.Quote.TotalCents != p.Quote.TotalCents {
		t.Fatalf("the stale total's refusal carries %+v", p2.Quote)
	}
	confirmed := decode[order](t, r.must(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody(p.Quote.TotalCents)), 200))
	if confirmed.Status != "confirmed" || confirmed.Quote.TotalCents != p.Quote.TotalCents || confirmed.Quote.OrderDate.String() != "2027-05-21" {
		t.Fatalf("confirmed %+v", confirmed)
	}
}

// Rule 2: only an active subscription buys (the example: a cart of 5 May 2027, the
// base service ending 4 June 2027, confirmed and paid on 8 June 2028).
func TestRuleOnlyAnActiveSubscriptionBuysOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-05-05", time.Hour)
	sub := r.open("cust-2", svc{"base", 1, "2027-06-04"})
	id := r.cart("cust-2", sub, 1)
	r.toForm("cust-2", id, "bank-transfer")
	clock.on("2028-06-08")
	cu := r.token(tokens.RoleCustomer, "cust-2")
	r.problem(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody()), 422, "subscription-not-active")
	if o := r.order(id); o.Status != "checkout" {
		t.Fatalf("refused, yet %s", o.Status)
	}
	// Confirmed while active, paid after the base service ended: the payment does not pay
	// the order (422), and the money is recorded as a credit due.
	sub2 := r.open("cust-2b", svc{"base", 1, "2028-07-01"})
	clock.on("2028-06-20")
	id2 := r.cart("cust-2b", sub2, 1)
	r.toForm("cust-2b", id2, "bank-transfer")
	total := r.order(id2).Quote.TotalCents
	r.must(r.do("POST", "/v1/orders/"+id2+"/confirm", r.token(tokens.RoleCustomer, "cust-2b"), confirmBody(total)), 200)
	clock.on("2028-07-02")
	p := r.problem(r.pay(id2, total, "CRO-LATE"), 422, "subscription-not-active")
	if p.CreditDueCents == nil || *p.CreditDueCents != total || p.Position == nil {
		t.Fatalf("problem %+v: the credit recorded is missing", p)
	}
	// The gateway's retry answers the same, and records nothing more.
	r.problem(r.pay(id2, total, "CRO-LATE"), 422, "subscription-not-active")
	o := r.order(id2)
	if o.Status != "confirmed" || o.PaidCents != 0 || o.CreditDueCents != total || len(o.Credits) != 1 {
		t.Fatalf("after the late payment: %+v", o)
	}
	fin := r.token(tokens.RoleFinance, "fin")
	cd := decode[struct {
		Total struct{ Count, AmountCents int64 } `json:"total"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/credits-due?after=%d", *p.Position), fin, nil), 200))
	if cd.Total.Count != 1 || cd.Total.AmountCents != total {
		t.Fatalf("credits due: %+v", cd)
	}
}

// Rule 3: abandoned carts end, by the sweeper's own event, freeing the subscription.
func TestRuleAbandonedCartsEndOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-05-05", 20*time.Millisecond)
	sub := r.open("cust-3", svc{"base", 1, "2028-09-30"})
	id := r.cart("cust-3", sub, 1)
	if o := r.order(id); o.AbandonsOn.String() != "2027-05-12" {
		t.Fatalf("abandons on %s", o.AbandonsOn)
	}
	cu := r.token(tokens.RoleCustomer, "cust-3")
	r.problem(r.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub, "channel": "app"}), 409, "order-in-progress")
	clock.on("2027-05-11")
	r.must(r.do("POST", "/v1/orders/"+id+"/co-termination", cu, map[string]any{"enabled": false}), 200) // touched: a week more
	clock.on("2027-05-17")
	r.problem(r.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub, "channel": "app"}), 409, "order-in-progress")
	clock.on("2027-05-18")
	testwait.For(t, "the sweeper abandons the cart", func() bool { return r.order(id).Status == "abandoned" })
	testwait.For(t, "the subscription's slot is free", func() bool {
		return r.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub, "channel": "app"}).status == 201
	})
}

// Rule 4: a year is a year, from the day the payment completes.
func TestRuleAYearIsAYearOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-05-05", time.Hour)
	sub := r.open("cust-4", svc{"base", 1, "2027-09-30"}, svc{"users", 3, "2027-06-04"})
	id := r.cart("cust-4", sub, 1)
	r.toForm("cust-4", id, "bank-transfer")
	total := r.order(id).Quote.TotalCents
	r.must(r.do("POST", "/v1/orders/"+id+"/confirm", r.token(tokens.RoleCustomer, "cust-4"), confirmBody(total)), 200)
	clock.on("2027-05-25") // paid 20 days later
	paid := decode[order](t, r.must(r.pay(id, total, "CRO-1"), 200))
	if paid.Status != "paid" || paid.GrantedUntil.String() != "2028-05-25" || paid.Quote.TotalCents != total {
		t.Fatalf("paid %+v", paid)
	}
	cu := r.token(tokens.RoleCustomer, "cust-4")
	q := decode[struct {
		PurchasedGB int `json:"purchasedGB"`
		Blocks      []struct {
			ValidFrom, ValidUntil domain.Date
		} `json:"blocks"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/subscriptions/%s/quota?after=%d", sub, paid.Position), cu, nil), 200))
	if q.PurchasedGB != 1 || q.Blocks[0].ValidFrom.String() != "2027-05-25" || q.Blocks[0].ValidUntil.String() != "2028-05-25" {
		t.Fatalf("quota %+v: 12 months from the payment, not the order", q)
	}
	type expiry struct {
		Kind      string      `json:"kind"`
		ExpiresOn domain.Date `json:"expiresOn"`
	}
	ex := decode[struct {
		Expiries []expiry `json:"expiries"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/subscriptions/%s/expiries?after=%d", sub, paid.Position), cu, nil), 200)).Expiries
	if len(ex) != 3 {
		t.Fatalf("expiries %+v", ex)
	}
	for _, e := range ex {
		if e.ExpiresOn.String() != "2028-05-25" {
			t.Fatalf("%s expires %s, want the space's 2028-05-25: %+v", e.Kind, e.ExpiresOn, ex)
		}
	}
}

// Rule 5: end of month stays end of month: the three examples.
func TestRuleEndOfMonthStaysEndOfMonthOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2026-03-31", time.Hour)
	for i, c := range []struct {
		orderDay, serviceEnds string
		months                int
	}{
		{"2026-03-31", "2026-09-30", 6},
		{"2027-01-31", "2027-02-28", 11},
		{"2027-03-31", "2028-02-29", 1},
	} {
		clock.on(c.orderDay)
		owner := fmt.Sprintf("cust-5-%d", i)
		sub := r.open(owner, svc{"base", 1, c.serviceEnds}, svc{"users", 250, c.serviceEnds})
		q := r.order(r.cart(owner, sub, 1)).Quote
		for _, l := range q.ExtendedServices() {
			if l.Months != c.months {
				t.Errorf("%s -> %s: %s charged %d months, want %d", c.serviceEnds, q.NewExpiry, l.Kind, l.Months, c.months)
			}
		}
		if !q.NewExpiry.IsEndOfMonth() {
			t.Errorf("ordered on %s (end of month), expiring %s", c.orderDay, q.NewExpiry)
		}
	}
}

// Rule 6: money that arrives is never refused.
func TestRuleMoneyThatArrivesIsNeverRefusedOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-05-05", 20*time.Millisecond)
	op := r.token(tokens.RoleOperator, "op")
	fin := r.token(tokens.RoleFinance, "fin")
	// An excess: the order is paid, the rest is a credit due.
	sub := r.open("cust-6", svc{"base", 1, "2028-09-30"})
	id := r.cart("cust-6", sub, 1)
	r.toForm("cust-6", id, "bank-transfer")
	cu := r.token(tokens.RoleCustomer, "cust-6")
	total := r.order(id).Quote.TotalCents
	r.must(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody(total)), 200)
	over := decode[order](t, r.must(r.pay(id, total+500, "CRO-OVER"), 200))
	if over.Status != "paid" || over.PaidCents != total || over.CreditDueCents != 500 {
		t.Fatalf("overpaid: %+v", over)
	}
	// A payment on a cancelled order: recorded, owed back.
	id2 := r.cart("cust-6", sub, 1)
	r.must(r.do("POST", "/v1/orders/"+id2+"/cancel", cu, nil), 200)
	if o := decode[order](t, r.must(r.pay(id2, 1234, "CRO-CANC"), 200)); o.Status != "cancelled" || o.CreditDueCents != 1234 {
		t.Fatalf("paid after cancellation: %+v", o)
	}
	// Partly paid past its term: overdue, not expired; the customer cannot cancel it, an
	// operator can, and what was paid is owed back.
	sub3 := r.open("cust-6c", svc{"base", 1, "2028-09-30"})
	id3 := r.cart("cust-6c", sub3, 1)
	r.toForm("cust-6c", id3, "bank-transfer")
	cu3 := r.token(tokens.RoleCustomer, "cust-6c")
	r.must(r.do("POST", "/v1/orders/"+id3+"/confirm", cu3, confirmBody(r.order(id3).Quote.TotalCents)), 200)
	r.must(r.pay(id3, 1000, "CRO-PART"), 200)
	clock.on("2027-06-05") // pay-by was 4 June
	testwait.For(t, "the sweeper marks the order overdue", func() bool { return r.order(id3).Status == "overdue" })
	var page struct {
		Orders []struct {
			OrderID        string `json:"orderId"`
			Status         string `json:"status"`
			RemainingCents int64  `json:"remainingCents"`
			AgeDays        int    `json:"ageDays"`
		} `json:"orders"`
	}
	testwait.For(t, "finance sees the overdue order", func() bool {
		page = decode[struct {
			Orders []struct {
				OrderID        string `json:"orderId"`
				Status         string `json:"status"`
				RemainingCents int64  `json:"remainingCents"`
				AgeDays        int    `json:"ageDays"`
			} `json:"orders"`
		}](t, r.must(r.do("GET", "/v1/pending-payments", fin, nil), 200))
		return len(page.Orders) == 1 && page.Orders[0].Status == "overdue"
	})
	if p := page.Orders[0]; p.OrderID != id3 || p.RemainingCents != r.order(id3).Quote.TotalCents-1000 || p.AgeDays != 31 {
		t.Fatalf("overdue in the pending list: %+v", p)
	}
	r.problem(r.do("POST", "/v1/orders/"+id3+"/cancel", cu3, nil), 409, "order-partially-paid")
	cancelled := decode[order](t, r.must(r.do("POST", "/v1/orders/"+id3+"/cancel", op, map[string]any{"reason": "unpaid balance"}), 200))
	if cancelled.Status != "cancelled" || cancelled.CreditDueCents != 1000 {
		t.Fatalf("cancelled by an operator: %+v", cancelled)
	}
	// Finance lists the credits due, totals that add up, JSON and CSV; the subscription is free.
	var cd struct {
		Credits []struct {
			AmountCents int64  `json:"amountCents"`
			Reason      string `json:"reason"`
		} `json:"credits"`
		Total struct {
			Count       int   `json:"count"`
			AmountCents int64 `json:"amountCents"`
		} `json:"total"`
	}
	cd = decode[struct {
		Credits []struct {
			AmountCents int64  `json:"amountCents"`
			Reason      string `json:"reason"`
		} `json:"credits"`
		Total struct {
			Count       int   `json:"count"`
			AmountCents int64 `json:"amountCents"`
		} `json:"total"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/credits-due?after=%d", cancelled.Position), fin, nil), 200))
	var sum int64
	for _, c := range cd.Credits {
		sum += c.AmountCents
	}
	if cd.Total.Count != 3 || cd.Total.AmountCents != 500+1234+1000 || sum != cd.Total.AmountCents {
		t.Fatalf("credits due: %+v", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.must(r.do("GET", "/v1/credits-due", fin, nil, "Accept", "text/csv"), 200).body)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][7] != "amount_cents" {
		t.Fatalf("credits CSV: %q %v", rows, err)
	}
	summary := decode[struct {
		CreditsDue struct{ Count int } `json:"creditsDue"`
	}](t, r.must(r.do("GET", "/v1/pending-payments/summary", fin, nil), 200))
	if summary.CreditsDue.Count != 3 {
		t.Fatalf("pending summary beside the credits: %+v", summary)
	}
	testwait.For(t, "the cancelled order's subscription is free", func() bool {
		return r.do("POST", "/v1/orders", cu3, map[string]any{"subscriptionId": sub3, "channel": "app"}).status == 201
	})
}

// Rules 7 and 10: the bank transfer's expected registration counts working days (Easter
// Monday 29 March 2027 is not one), finance and the email name the same day, and the
// email's words agree with its numbers ("1 mese").
func TestRuleWorkingDaysAndWordsOverHTTP(t *testing.T) {
	r, _, cfg := startCalendar(t, "2027-03-25", time.Hour) // a Thursday
	// Users end on 1 March 2028: to 25 March 2028 is 1 month; the base, 6 months.
	sub := r.open("cust-7", svc{"base", 1, "2027-09-25"}, svc{"users", 2, "2028-03-01"})
	id := r.cart("cust-7", sub, 1)
	r.toForm("cust-7", id, "bank-transfer")
	res := decode[order](t, r.must(r.do("POST", "/v1/orders/"+id+"/confirm", r.token(tokens.RoleCustomer, "cust-7"), confirmBody()), 200))
	var page struct {
		Orders []struct {
			ExpectedRegistrationOn string `json:"expectedRegistrationOn"`
		} `json:"orders"`
	}
	page = decode[struct {
		Orders []struct {
			ExpectedRegistrationOn string `json:"expectedRegistrationOn"`
		} `json:"orders"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/pending-payments?after=%d", res.Position), r.token(tokens.RoleFinance, "fin"), nil), 200))
	// Friday 26 (1), Easter Monday skipped, Tuesday 30 to Friday 2 April (2-5).
	if len(page.Orders) != 1 || page.Orders[0].ExpectedRegistrationOn != "2027-04-02" {
		t.Fatalf("pending: %+v", page)
	}
	var text string
	testwait.For(t, "the instructions email", func() bool {
		files, _ := filepath.Glob(filepath.Join(cfg.DataDir, "outbox", "*.eml"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			m, err := mail.ReadMessage(bytes.NewReader(b))
			if err != nil || m.Header.Get("X-Order-Id") != id {
				continue
			}
			text = plainText(t, m)
			return true
		}
		return false
	})
	for _, want := range []string{"entro il 02/04/2027 (5 giorni lavorativi)", "1 mese", "6 mesi", "12 mesi"} {
		if !strings.Contains(text, want) {
			t.Errorf("the email lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "1 mesi") {
		t.Errorf("the email says \"1 mesi\":\n%s", text)
	}
}

// Rule 8: earlier space still valid is aligned with co-termination and charged per GB and
// month; purchased space never goes down.
func TestRuleEarlierSpaceIsAlignedOverHTTP(t *testing.T) {
	r, clock, _ := startCalendar(t, "2027-01-10", time.Hour)
	sub := r.open("cust-8", svc{"base", 1, "2028-12-31"})
	cu := r.token(tokens.RoleCustomer, "cust-8")
	buy := func(gb int) order {
		id := r.cart("cust-8", sub, gb)
		r.toForm("cust-8", id, "card")
		q := r.order(id).Quote
		r.must(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody(q.TotalCents)), 200)
		return decode[order](t, r.must(r.pay(id, q.TotalCents, "CARD-"+id), 200))
	}
	first := buy(2) // 2 GB to 10 January 2028
	clock.on("2027-06-15")
	id := r.cart("cust-8", sub, 1)
	q := r.order(id).Quote
	es := q.EarlierSpace()
	// 10 January 2028 -> 15 June 2028: 6 months (a started month counts), 2 GB at 2.50 EUR.
	if len(es) != 1 || es[0].Quantity != 2 || es[0].Months != 6 || es[0].UnitCents != 250 || es[0].NetCents != 3000 {
		t.Fatalf("earlier space in the quote: %+v (first order %+v)", q.Lines, first.GrantedUntil)
	}
	// Cancelled, the cart frees the slot at once; bought, the earlier 2 GB are aligned.
	r.must(r.do("POST", "/v1/orders/"+id+"/cancel", cu, nil), 200)
	second := buy(1)
	quota := decode[struct {
		PurchasedGB int `json:"purchasedGB"`
		Blocks      []struct {
			GB         int         `json:"gb"`
			ValidUntil domain.Date `json:"validUntil"`
		} `json:"blocks"`
	}](t, r.must(r.do("GET", fmt.Sprintf("/v1/subscriptions/%s/quota?after=%d", sub, second.Position), cu, nil), 200))
	if quota.PurchasedGB != 3 || len(quota.Blocks) != 2 {
		t.Fatalf("quota %+v", quota)
	}
	for _, b := range quota.Blocks {
		if b.ValidUntil != second.GrantedUntil {
			t.Fatalf("block %+v not aligned to %s", b, second.GrantedUntil)
		}
	}
}

// Rule 9: no arithmetic wraps: out-of-range values are 422 problems naming the field.
func TestRuleNoArithmeticWrapsOverHTTP(t *testing.T) {
	r, _, _ := startCalendar(t, "2027-05-05", time.Hour)
	op := r.token(tokens.RoleOperator, "op")
	body := func(users int64) map[string]any {
		return map[string]any{"ownerId": "cust-9", "language": "it",
			"holder": map[string]any{"name": "R", "email": "r@example.com"},
			"services": []map[string]any{{"kind": "base", "quantity": 1, "expiresOn": "2028-01-31"},
				{"kind": "users", "quantity": users, "expiresOn": "2027-06-30"}}}
	}
	for _, users := range []int64{math.MaxInt64, 138350580552821634, 10_001} {
		if p := r.problem(r.do("POST", "/v1/subscriptions", op, body(users)), 422, "invalid-services"); p.Field != "services[1].quantity" {
			t.Fatalf("users %d: field %q", users, p.Field)
		}
	}
	sub := r.must(r.do("POST", "/v1/subscriptions", op, body(10_000)), 201).field(t, "subscriptionId").(string)
	cu := r.token(tokens.RoleCustomer, "cust-9")
	if p := r.problem(r.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": sub, "channel": "app", "gb": math.MaxInt64}), 422, "invalid-quantity"); p.Field != "gb" {
		t.Fatalf("gb field %q", p.Field)
	}
	if p := r.problem(r.do("POST", "/v1/subscriptions/"+sub+"/usage", op, map[string]any{"usedBytes": int64(math.MaxInt64)}), 422, "invalid-usage"); p.Field != "usedBytes" {
		t.Fatalf("usedBytes field %q", p.Field)
	}
	// The largest subscription allowed prices without wrapping, above the space alone.
	id := r.cart("cust-9", sub, 100)
	q := r.order(id).Quote
	if q.TotalCents <= 100*2500 || !q.Adds() {
		t.Fatalf("quote %+v", q)
	}
	r.toForm("cust-9", id, "card")
	r.must(r.do("POST", "/v1/orders/"+id+"/confirm", cu, confirmBody(q.TotalCents)), 200)
	if p := r.problem(r.pay(id, math.MaxInt64, "HUGE"), 422, "amount-out-of-range"); p.Field != "amountCents" {
		t.Fatalf("amountCents field %q", p.Field)
	}
}

// plainText is the text/plain part of an email, decoded.
func plainText(t *testing.T, m *mail.Message) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return decodePart(t, m.Header.Get("Content-Transfer-Encoding"), m.Body)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no text/plain part: %v", err)
		}
		if ct := p.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
			return decodePart(t, p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
}

func decodePart(t *testing.T, encoding string, r io.Reader) string {
	t.Helper()
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
