package projections

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// The read models show the calendar rules' states: overdue orders with their balance and
// age, credits due beside the pending payments, the carts the sweeper must end, and earlier
// space aligned by co-termination.

func TestPendingShowsOverdueOrdersAndCreditsDue(t *testing.T) {
	g := newGiven(t).on(subS, opened()).on(orderS, confirmed(domain.MethodBankTransfer, 6100, at(2025, 1, 10, 10)))
	g.on(orderS, domain.PaymentRegistered{AmountCents: 1000, Method: "bank-transfer", Reference: "r1", PaidCents: 1000, RegisteredAt: now})
	if due := g.ms.Pending.Due(now, 7); !slices.Equal(due, []uuid.UUID{orderID}) {
		t.Fatalf("due for the sweeper: %v, want the order past its term", due)
	}
	g.on(orderS, domain.OrderOverdue{PayBy: day(2025, 2, 9), PaidCents: 1000, DueCents: 5100, OverdueAt: now})
	if due := g.ms.Pending.Due(now, 7); len(due) != 0 {
		t.Fatalf("an overdue order is not swept again: %v", due)
	}
	p, _ := g.ms.Pending.Page(PendingQuery{}, now)
	if len(p.Orders) != 1 || p.Orders[0].Status != "overdue" || p.Orders[0].RemainingCents != 5100 || p.Orders[0].AgeDays != 50 {
		t.Fatalf("overdue order: %+v", p.Orders)
	}
	s := g.ms.Pending.Summary(now)
	if s.Overdue.Count != 1 || s.Overdue.PaidCents != 1000 || s.Total.Count != 1 || s.CreditsDue.Count != 0 {
		t.Fatalf("summary: %+v", s)
	}
	// An operator cancels it: it leaves the pending list, and what was paid is a credit due.
	g.on(orderS, domain.OrderCancelled{Reason: "operator", CancelledAt: now},
		domain.CreditDue{OrderID: orderID, SubscriptionID: subID, OwnerID: "cust-1", Holder: domain.Holder{Name: "=bad", Email: "a@example.com"},
			AmountCents: 1000, Reason: domain.CreditCancelledPartlyPaid, RecordedAt: now})
	other := uuid.New()
	g.on("order-"+other.String(), domain.CreditDue{OrderID: other, SubscriptionID: subID, OwnerID: "cust-1",
		AmountCents: 250, Reason: domain.CreditExcess, Reference: "r9", RecordedAt: at(2025, 2, 20, 9)})
	s = g.ms.Pending.Summary(now)
	if s.Total.Count != 0 || s.CreditsDue.Count != 2 || s.CreditsDue.AmountCents != 1250 {
		t.Fatalf("summary after the cancellation: %+v", s)
	}
	c := g.ms.Pending.CreditsDue(now)
	if len(c.Credits) != 2 || c.Credits[0].OrderID != other || c.Credits[0].AgeDays != 9 || c.Total.AmountCents != 1250 ||
		len(c.ByReason) != 2 || c.ByReason[0].Reason != domain.CreditCancelledPartlyPaid || c.ByReason[1].AmountCents != 250 {
		t.Fatalf("credits due: %+v", c)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, c.Credits); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 3 || rows[2][4] != "'=bad" || rows[1][6] != "2.50" {
		t.Fatalf("credits CSV: %q %v", rows, err)
	}
}

func TestPendingNamesAbandonedCartsForTheSweeper(t *testing.T) {
	q := domain.Quote{OrderDate: day(2025, 2, 20), TotalCents: 100}
	g := newGiven(t).on(subS, opened()).on(orderS, domain.SpaceIncreaseRequested{OrderID: orderID, SubscriptionID: subID, Quote: q, RequestedAt: at(2025, 2, 20, 9)})
	if due := g.ms.Pending.Due(at(2025, 2, 26, 23), 7); len(due) != 0 {
		t.Fatalf("six days on: %v", due)
	}
	if due := g.ms.Pending.Due(at(2025, 2, 27, 0), 7); !slices.Equal(due, []uuid.UUID{orderID}) {
		t.Fatalf("seven days on: %v", due)
	}
	// Priced again on the 25th: touched then.
	q.OrderDate = day(2025, 2, 25)
	g.on(orderS, domain.QuoteRepriced{PreviousOrderDate: day(2025, 2, 20), Quote: q, RepricedAt: at(2025, 2, 25, 9)})
	if due := g.ms.Pending.Due(at(2025, 2, 27, 0), 7); len(due) != 0 {
		t.Fatalf("touched on the 25th: %v", due)
	}
	g.on(orderS, domain.OrderAbandoned{LastActiveOn: q.OrderDate, AbandonedAt: at(2025, 3, 4, 0)})
	if due := g.ms.Pending.Due(at(2025, 4, 1, 0), 7); len(due) != 0 {
		t.Fatalf("after abandonment: %v", due)
	}
}

func TestQuotaAndExpiryFollowEarlierSpaceAligned(t *testing.T) {
	first := uuid.New()
	g := newGiven(t).on(subS, opened(),
		domain.SpaceAdded{OrderID: first, GB: 2, ValidFrom: day(2024, 6, 1), ValidUntil: day(2025, 6, 1)},
		domain.SpaceAdded{OrderID: orderID, GB: 1, ValidFrom: day(2025, 3, 1), ValidUntil: day(2026, 3, 1)},
		domain.SpaceExtended{OrderID: orderID, Blocks: []domain.BlockExtension{{OrderID: first, GB: 2, OldUntil: day(2025, 6, 1), NewUntil: day(2026, 3, 1), Months: 9}}},
	)
	later := at(2025, 12, 1, 12)
	if q, _ := g.ms.Quota.Quota(subID, later); q.PurchasedGB != 3 || q.TotalGB != 4 {
		t.Fatalf("quota in December: %+v", q)
	}
	v, _ := g.ms.Expiry.Subscription(subID, later)
	for _, e := range v {
		if e.Kind == KindSpace && e.ExpiresOn != day(2026, 3, 1) {
			t.Fatalf("space expiry %+v", e)
		}
	}
}

// Rule 9: a use near 2^63, recorded before the maximum existed, does not wrap the figures.
func TestQuotaOfAHugeUseDoesNotWrap(t *testing.T) {
	g := newGiven(t).on(subS, opened(), domain.UsageReported{UsedBytes: math.MaxInt64, ReportedAt: now})
	q, _ := g.ms.Quota.Quota(subID, now)
	if q.Warning != WarningFull || q.RecommendedGB <= 0 || q.PercentUsed <= 100 {
		t.Fatalf("quota with MaxInt64 bytes used: %+v", q)
	}
}

// Events written before the calendar rules read as they did: a cart with no copy of the
// space, a confirmation with no expected registration day (it is computed by the same
// working-day rule), a payment with no excess.
func TestOlderEventsStillRead(t *testing.T) {
	old := []struct{ name, payload string }{
		{"SpaceIncreaseRequested", `{"orderId":"22222222-2222-4222-8222-222222222222","subscriptionId":"11111111-1111-4111-8111-111111111111","ownerId":"cust-1","holder":{"name":"R","email":"r@example.com"},"language":"it","services":[{"kind":"base","quantity":1,"expiresOn":"2025-09-30"}],"channel":"panel","quote":{"orderDate":"2025-01-31","newExpiry":"2026-01-31","coTermination":true,"gb":1,"lines":[],"netCents":2500,"vatPercent":22,"vatCents":550,"totalCents":3050,"currency":"EUR"},"requestedAt":"2025-01-31T09:00:00Z"}`},
		{"OrderConfirmed", `{"orderId":"22222222-2222-4222-8222-222222222222","subscriptionId":"11111111-1111-4111-8111-111111111111","ownerId":"cust-1","quote":{"orderDate":"2025-01-31","newExpiry":"2026-01-31","gb":1,"totalCents":3050},"paymentMethod":"bank-transfer","recipient":{"name":"R","email":"r@example.com","language":"it"},"acceptances":{"generalConditions":true,"unfairTerms":true,"privacy":true,"termsVersion":"v1","acceptedAt":"2025-01-31T09:00:00Z"},"confirmedAt":"2025-01-31T09:00:00Z","payBy":"2025-03-02","expectedRegistrationDays":5}`},
		{"OrderPaid", `{"orderId":"22222222-2222-4222-8222-222222222222","subscriptionId":"11111111-1111-4111-8111-111111111111","quote":{"gb":1,"totalCents":3050},"recipient":{"name":"R","email":"r@example.com","language":"it"},"paidCents":3050,"paidAt":"2025-02-03T09:00:00Z"}`},
	}
	var o domain.Order
	for _, e := range old {
		ev, err := codec.Decode(e.name, 1, []byte(e.payload))
		if err != nil {
			t.Fatalf("%s v1: %v", e.name, err)
		}
		if c, ok := ev.(domain.OrderConfirmed); ok {
			// Friday 31 January 2025 + 5 working days: Friday 7 February.
			if got := c.ExpectedRegistration(); got != day(2025, 2, 7) {
				t.Fatalf("expected registration of an older confirmation: %s", got)
			}
		}
		o = domain.EvolveOrder(o, ev.(domain.Event))
	}
	if o.Status != domain.StatusPaid || len(o.Space) != 0 || o.CreditCents != 0 || o.Quote.SpaceMonths() != 12 {
		t.Fatalf("older order folds to %+v", o)
	}
}
