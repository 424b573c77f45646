package projections

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// given folds hand-built commits (one event each) into fresh models.
type given struct {
	t   *testing.T
	ms  *Models
	pos uint64
}

func newGiven(t *testing.T) *given { return &given{t: t, ms: NewModels()} }

func (g *given) on(stream string, evs ...domain.Event) *given {
	g.t.Helper()
	for _, env := range envelopes(g.t, []commit{{stream: stream, events: evs, at: time.Now()}}, g.pos) {
		ev, err := codec.DecodeDomain(env)
		if err != nil {
			g.t.Fatal(err)
		}
		g.ms.Apply(env, ev)
	}
	g.pos++
	return g
}

var (
	subID   = uuid.MustParse("11111111-1111-4111-8111-111111111111")
	orderID = uuid.MustParse("22222222-2222-4222-8222-222222222222")
	subS    = eventstore.StreamName("subscription", subID)
	orderS  = eventstore.StreamName("order", orderID)
	day     = func(y int, m time.Month, d int) domain.Date { return domain.Date{Year: y, Month: m, Day: d} }
	at      = func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, domain.Rome) }
	now     = at(2025, 3, 1, 12)
)

func opened() domain.SubscriptionOpened {
	return domain.SubscriptionOpened{
		SubscriptionID: subID, OwnerID: "cust-1", Holder: domain.Holder{Name: "=cmd|' /C calc'!A0", Email: "a@example.com"},
		Language: "it", BaseGB: 1, OpenedOn: day(2024, 3, 1),
		Services: []domain.Service{
			{Kind: domain.KindBase, Quantity: 1, ExpiresOn: day(2025, 3, 20)},
			{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: day(2025, 2, 10)},
		},
	}
}

func confirmed(method string, totalCents int64, when time.Time) domain.OrderConfirmed {
	return domain.OrderConfirmed{
		OrderID: orderID, SubscriptionID: subID, OwnerID: "cust-1", PaymentMethod: method,
		Quote:       domain.Quote{GB: 2, TotalCents: totalCents},
		Recipient:   domain.Recipient{Name: "@Holder", Email: "a@example.com", Language: "it"},
		ConfirmedAt: when, PayBy: domain.DateOf(when).AddDays(30), ExpectedRegistrationDays: 5,
	}
}

func TestQuotaFold(t *testing.T) {
	g := newGiven(t).on(subS, opened())
	q, ok := g.ms.Quota.Quota(subID, now)
	if !ok || q.OwnerID != "cust-1" || q.BaseGB != 1 || q.TotalGB != 1 || q.PurchasedGB != 0 || q.Warning != WarningNone || q.UsageReportedAt != nil {
		t.Fatalf("after SubscriptionOpened: %+v", q)
	}
	if _, ok := g.ms.Quota.Quota(orderID, now); ok {
		t.Fatal("an unknown subscription has a quota")
	}

	// Order confirmed: its GB are pending; slot events change nothing.
	g.on(subS, domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now})
	g.on(orderS, confirmed(domain.MethodBankTransfer, 6100, now))
	if q, _ = g.ms.Quota.Quota(subID, now); q.PendingGB != 2 || q.TotalGB != 1 {
		t.Fatalf("after OrderConfirmed: %+v", q)
	}
	// Paid: pending leaves; SpaceAdded: the block counts while valid.
	g.on(orderS, domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, PaidCents: 6100, PaidAt: now})
	if q, _ = g.ms.Quota.Quota(subID, now); q.PendingGB != 0 {
		t.Fatalf("after OrderPaid: %+v", q)
	}
	g.on(subS, domain.SpaceAdded{OrderID: orderID, GB: 2, ValidFrom: day(2025, 3, 1), ValidUntil: day(2026, 3, 1)})
	q, _ = g.ms.Quota.Quota(subID, now)
	if q.PurchasedGB != 2 || q.TotalGB != 3 || len(q.Blocks) != 1 || q.Blocks[0].ValidUntil != day(2026, 3, 1) || q.CapacityBytes != 3*BytesPerGB {
		t.Fatalf("after SpaceAdded: %+v", q)
	}
	if q, _ = g.ms.Quota.Quota(subID, at(2026, 3, 2, 12)); q.PurchasedGB != 0 || len(q.Blocks) != 0 {
		t.Fatalf("block counted after its expiry: %+v", q)
	}
	// The same SpaceAdded again (a replayed process manager) is not counted twice.
	g.on(subS, domain.SpaceAdded{OrderID: orderID, GB: 2, ValidFrom: day(2025, 3, 1), ValidUntil: day(2026, 3, 1)})
	if q, _ = g.ms.Quota.Quota(subID, now); q.PurchasedGB != 2 {
		t.Fatalf("SpaceAdded counted twice: %+v", q)
	}

	// Usage: 70 % warns, 100 % is full; the recommendation extrapolates.
	g.on(subS, domain.UsageReported{UsedBytes: (3*BytesPerGB*7 + 9) / 10, ReportedAt: now})
	q, _ = g.ms.Quota.Quota(subID, now)
	if q.Warning != WarningHigh || q.PercentUsed != 70 || q.UsedBytes != (3*BytesPerGB*7+9)/10 || q.UsageReportedAt == nil {
		t.Fatalf("at 70 %%: %+v", q)
	}
	// 2.1 GB in 365 days, a year more at that pace: 4.2 GB against 3 GB valid then... but the
	// block ends 2026-03-01, the horizon is 2026-03-01: still valid, so 5 GB missing 2 GB.
	if q.RecommendedGB != 2 {
		t.Fatalf("recommended %d GB, want 2: %+v", q.RecommendedGB, q)
	}
	g.on(subS, domain.UsageReported{UsedBytes: 3 * BytesPerGB, ReportedAt: now})
	if q, _ = g.ms.Quota.Quota(subID, now); q.Warning != WarningFull || q.PercentUsed != 100 {
		t.Fatalf("at 100 %%: %+v", q)
	}
	g.on(subS, domain.UsageReported{UsedBytes: 1000, ReportedAt: now})
	if q, _ = g.ms.Quota.Quota(subID, now); q.Warning != WarningNone || q.RecommendedGB != 0 {
		t.Fatalf("at almost nothing: %+v", q)
	}
}

func TestQuotaPendingLeavesOnCancelAndExpiry(t *testing.T) {
	for _, end := range []domain.Event{domain.OrderCancelled{CancelledAt: now}, domain.OrderExpired{ExpiredAt: now}} {
		g := newGiven(t).on(subS, opened()).on(orderS, confirmed(domain.MethodCard, 100, now))
		g.on(orderS, end)
		if q, _ := g.ms.Quota.Quota(subID, now); q.PendingGB != 0 {
			t.Fatalf("after %T: pending %d", end, q.PendingGB)
		}
		if g.ms.Pending.Len() != 0 {
			t.Fatalf("after %T: still pending payment", end)
		}
	}
}

func TestExpiryFold(t *testing.T) {
	g := newGiven(t).on(subS, opened())
	v, ok := g.ms.Expiry.Subscription(subID, now)
	if !ok || len(v) != 2 {
		t.Fatalf("after SubscriptionOpened: %+v", v)
	}
	if v[0].Kind != domain.KindBase || v[0].Status != ExpiryExpiring || v[0].DaysLeft != 19 || v[0].HolderName != opened().Holder.Name {
		t.Fatalf("base: %+v", v[0])
	}
	if v[1].Kind != domain.KindUsers || v[1].Status != ExpiryExpired || v[1].Quantity != 2 {
		t.Fatalf("users: %+v", v[1])
	}
	if v, _ = g.ms.Expiry.Subscription(subID, at(2025, 1, 1, 12)); v[0].Status != ExpiryActive {
		t.Fatalf("base 78 days ahead: %+v", v[0])
	}
	// Extended: the new expiry; an extension to an earlier date does nothing.
	g.on(subS, domain.ServicesExtended{OrderID: orderID, Services: []domain.ServiceExtension{
		{Kind: domain.KindBase, Quantity: 1, OldExpiry: day(2025, 3, 20), NewExpiry: day(2026, 3, 1), Months: 12},
		{Kind: domain.KindUsers, Quantity: 2, OldExpiry: day(2025, 2, 10), NewExpiry: day(2024, 1, 1), Months: 0},
	}})
	g.on(subS, domain.SpaceAdded{OrderID: orderID, GB: 2, ValidFrom: day(2025, 3, 1), ValidUntil: day(2026, 3, 1)})
	v, _ = g.ms.Expiry.Subscription(subID, now)
	if len(v) != 3 || v[0].ExpiresOn != day(2026, 3, 1) || v[0].Status != ExpiryActive || v[1].ExpiresOn != day(2025, 2, 10) {
		t.Fatalf("after ServicesExtended: %+v", v)
	}
	if v[2].Kind != KindSpace || v[2].OrderID == nil || *v[2].OrderID != orderID || v[2].Quantity != 2 {
		t.Fatalf("space block: %+v", v[2])
	}
	// Across subscriptions: within 365 days from now, base and space (2026-03-01) and not
	// the expired users; within 30 days nothing.
	if w := g.ms.Expiry.Within(365, now); len(w) != 2 || w[0].Kind != domain.KindBase || w[1].Kind != KindSpace {
		t.Fatalf("within 365 days: %+v", w)
	}
	if w := g.ms.Expiry.Within(30, now); len(w) != 0 {
		t.Fatalf("within 30 days: %+v", w)
	}
}

func TestPendingFold(t *testing.T) {
	g := newGiven(t).on(subS, opened()).on(orderS, confirmed(domain.MethodBankTransfer, 6100, at(2025, 2, 1, 10)))
	p, err := g.ms.Pending.Page(PendingQuery{}, now)
	if err != nil || len(p.Orders) != 1 {
		t.Fatalf("after OrderConfirmed: %+v %v", p, err)
	}
	o := p.Orders[0]
	if o.OrderID != orderID || o.SubscriptionID != subID || o.OwnerID != "cust-1" || o.AmountDueCents != 6100 ||
		o.RemainingCents != 6100 || o.Method != domain.MethodBankTransfer || o.AgeDays != 28 || o.AgeBucket != Bucket8to30 ||
		// Saturday 1 February + 5 working days: Monday 3 to Friday 7.
		o.ExpectedRegistrationOn != day(2025, 2, 7) || o.PayBy != day(2025, 3, 3) || o.Status != "confirmed" {
		t.Fatalf("pending order: %+v", o)
	}
	g.on(orderS, domain.PaymentRegistered{AmountCents: 100, Method: domain.MethodBankTransfer, Reference: "r1", PaidCents: 100, RegisteredAt: now})
	p, _ = g.ms.Pending.Page(PendingQuery{}, now)
	if o = p.Orders[0]; o.PaidCents != 100 || o.RemainingCents != 6000 {
		t.Fatalf("after PaymentRegistered: %+v", o)
	}
	s := g.ms.Pending.Summary(now)
	if s.Total != (PendingTotals{1, 6100, 100, 6000}) || len(s.ByMethod) != 1 || s.ByAge[1].Count != 1 {
		t.Fatalf("summary: %+v", s)
	}
	g.on(orderS, domain.PaymentRegistered{AmountCents: 6000, Method: domain.MethodBankTransfer, Reference: "r2", PaidCents: 6100, RegisteredAt: now},
		domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, PaidCents: 6100, PaidAt: now})
	if p, _ = g.ms.Pending.Page(PendingQuery{}, now); len(p.Orders) != 0 {
		t.Fatalf("a paid order is still pending: %+v", p)
	}
	if s = g.ms.Pending.Summary(now); s.Total.Count != 0 || s.Total.AmountDueCents != 0 {
		t.Fatalf("summary after payment (stale cache?): %+v", s)
	}
}

// pendingOrders builds n confirmed orders, one every 13 hours, methods in turn.
func pendingOrders(t *testing.T, n int) (*Models, []uuid.UUID) {
	ms := NewModels()
	var ids []uuid.UUID
	for i := range n {
		id := uuid.New()
		ids = append(ids, id)
		c := confirmed(methods[i%3], int64(1000+i), at(2025, 1, 1, 0).Add(time.Duration(i)*13*time.Hour))
		c.OrderID = id
		env := envelopes(t, []commit{{stream: eventstore.StreamName("order", id), events: []domain.Event{c}}}, uint64(i))[0]
		ms.Pending.Apply(env, c)
	}
	return ms, ids
}

func TestPendingPagesAreStableAndFiltered(t *testing.T) {
	ms, ids := pendingOrders(t, 200)
	today := at(2025, 4, 15, 12)
	all := ms.Pending.All(today)
	// Page through 7 at a time while removing orders around the cursor: no order that stays
	// is skipped or repeated.
	var got []uuid.UUID
	cursor := ""
	removed := map[uuid.UUID]bool{}
	for {
		p, err := ms.Pending.Page(PendingQuery{Cursor: cursor, Limit: 7}, today)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range p.Orders {
			got = append(got, o.OrderID)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
		// Remove the last order returned and the next one not yet returned.
		last := p.Orders[len(p.Orders)-1].OrderID
		for _, id := range []uuid.UUID{last, ids[min(len(got), len(ids)-1)]} {
			if !removed[id] {
				removed[id] = true
				env := envelopes(t, []commit{{stream: eventstore.StreamName("order", id), events: []domain.Event{domain.OrderCancelled{}}}}, 0)[0]
				ms.Pending.Apply(env, domain.OrderCancelled{})
			}
		}
	}
	var want []uuid.UUID
	for _, o := range all {
		if !removed[o.OrderID] || slicesContains(got, o.OrderID) {
			want = append(want, o.OrderID)
		}
	}
	if len(got) != len(want) {
		for i, id := range want {
			if !slicesContains(got, id) {
				t.Logf("missing %d %s", i, id)
			}
		}
		t.Fatalf("paged %d orders, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("page order differs at %d", i)
		}
	}

	// Filters: method and minimum age, checked against the full list.
	rest := ms.Pending.All(today)
	for _, q := range []PendingQuery{{Method: domain.MethodPayPal}, {MinAgeDays: 60}, {Method: domain.MethodCard, MinAgeDays: 90}, {MinAgeDays: 1000}, {Method: "cash"}} {
		var want []PendingView
		for _, o := range rest {
			if (q.Method == "" || o.Method == q.Method) && o.AgeDays >= q.MinAgeDays {
				want = append(want, o)
			}
		}
		q.Limit = 1000
		p, err := ms.Pending.Page(q, today)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Orders) != len(want) {
			t.Fatalf("%+v: %d orders, want %d", q, len(p.Orders), len(want))
		}
		for i := range want {
			if p.Orders[i] != want[i] {
				t.Fatalf("%+v: order %d differs", q, i)
			}
		}
	}
	if _, err := ms.Pending.Page(PendingQuery{Cursor: "not-a-cursor"}, today); err == nil {
		t.Fatal("a bad cursor was accepted")
	}
}

func slicesContains(s []uuid.UUID, id uuid.UUID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

// checkTotals checks the summary adds up to the list exactly, by method and by bucket.
func checkTotals(t *testing.T, list []PendingView, s PendingSummary) {
	t.Helper()
	var total PendingTotals
	byMethod := map[string]PendingTotals{}
	byAge := map[string]PendingTotals{}
	for _, o := range list {
		one := PendingTotals{1, o.AmountDueCents, o.PaidCents, o.RemainingCents}
		total.add2(one)
		m, a := byMethod[o.Method], byAge[o.AgeBucket]
		m.add2(one)
		a.add2(one)
		byMethod[o.Method], byAge[o.AgeBucket] = m, a
	}
	if s.Total != total {
		t.Fatalf("summary total %+v, list total %+v", s.Total, total)
	}
	var sumM, sumA PendingTotals
	for _, m := range s.ByMethod {
		if m.PendingTotals != byMethod[m.Method] {
			t.Fatalf("method %s: %+v, list %+v", m.Method, m.PendingTotals, byMethod[m.Method])
		}
		sumM.add2(m.PendingTotals)
	}
	for _, b := range s.ByAge {
		if b.PendingTotals != byAge[b.Bucket] {
			t.Fatalf("bucket %s: %+v, list %+v", b.Bucket, b.PendingTotals, byAge[b.Bucket])
		}
		sumA.add2(b.PendingTotals)
	}
	if sumM != total || sumA != total || len(s.ByAge) != 4 {
		t.Fatalf("groups do not add up: methods %+v, ages %+v, total %+v", sumM, sumA, total)
	}
}

func (t *PendingTotals) add2(o PendingTotals) {
	t.Count += o.Count
	t.AmountDueCents += o.AmountDueCents
	t.PaidCents += o.PaidCents
	t.RemainingCents += o.RemainingCents
}

func TestSummaryAddsUpToTheList(t *testing.T) {
	ms, _ := pendingOrders(t, 300)
	for _, day := range []time.Time{at(2025, 1, 5, 0), at(2025, 2, 20, 23), at(2025, 6, 1, 12)} {
		list := ms.Pending.All(day)
		checkTotals(t, list, ms.Pending.Summary(day))
	}
}
