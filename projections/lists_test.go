package projections

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// listsGiven folds hand-built commits, one event each, into a lists model.
type listsGiven struct {
	t   *testing.T
	m   *ListsModel
	pos uint64
}

func (g *listsGiven) on(stream string, at time.Time, evs ...domain.Event) *listsGiven {
	g.t.Helper()
	for _, ev := range evs {
		for _, env := range envelopes(g.t, []commit{{stream: stream, events: []domain.Event{ev}, at: at}}, g.pos) {
			dev, err := codec.DecodeDomain(env)
			if err != nil {
				g.t.Fatal(err)
			}
			g.m.Apply(env, dev)
		}
		g.pos++
	}
	return g
}

func orderIDs(p OrdersPage) []uuid.UUID {
	ids := []uuid.UUID{}
	for _, o := range p.Orders {
		ids = append(ids, o.OrderID)
	}
	return ids
}

// listsHistory: owners cust-0..2 each open two subscriptions; each subscription gets an
// order that ends paid, cancelled, confirmed or left in the cart, in turn.
func listsHistory(t *testing.T) (*listsGiven, map[string][]uuid.UUID, []uuid.UUID) {
	g := &listsGiven{t: t, m: NewListsModel()}
	subsOf := map[string][]uuid.UUID{}
	var orders []uuid.UUID
	when := at(2025, 1, 10, 9)
	for i := range 6 {
		owner := fmt.Sprintf("cust-%d", i%3)
		sub, order := uuid.New(), uuid.New()
		subsOf[owner] = append(subsOf[owner], sub)
		orders = append(orders, order)
		ss, os := eventstore.StreamName("subscription", sub), eventstore.StreamName("order", order)
		g.on(ss, when, domain.SubscriptionOpened{SubscriptionID: sub, OwnerID: owner, Holder: domain.Holder{Name: "H" + owner},
			BaseGB: 1, OpenedOn: domain.DateOf(when)})
		g.on(ss, when, domain.OrderSlotReserved{OrderID: order, ReservedAt: when})
		g.on(os, when, domain.SpaceIncreaseRequested{OrderID: order, SubscriptionID: sub, OwnerID: owner, Channel: "panel",
			Quote: domain.Quote{GB: 1, CoTermination: true, TotalCents: 6100}, RequestedAt: when})
		switch i % 4 {
		case 0:
			g.on(os, when, domain.CheckoutStarted{}, domain.PaymentMethodSelected{Method: "bank-transfer"},
				domain.OrderConfirmed{OrderID: order, SubscriptionID: sub, OwnerID: owner, PaymentMethod: "bank-transfer",
					Quote: domain.Quote{GB: 1, TotalCents: 6100}, ConfirmedAt: when},
				domain.PaymentRegistered{AmountCents: 6100, PaidCents: 6100, Reference: "r"},
				domain.OrderPaid{OrderID: order, SubscriptionID: sub, PaidCents: 6100, PaidAt: when})
			g.on(ss, when, domain.SpaceAdded{OrderID: order, GB: 1})
		case 1:
			g.on(os, when, domain.OrderCancelled{Reason: "changed my mind", CancelledAt: when})
			g.on(ss, when, domain.OrderSlotReleased{OrderID: order, Reason: "cancelled"})
		case 2:
			g.on(os, when, domain.CheckoutStarted{}, domain.PaymentMethodSelected{Method: "card"},
				domain.OrderConfirmed{OrderID: order, SubscriptionID: sub, OwnerID: owner, PaymentMethod: "card",
					Quote: domain.Quote{GB: 1, TotalCents: 6100}, ConfirmedAt: when})
		}
		when = when.Add(time.Hour)
	}
	return g, subsOf, orders
}

func TestListsByOwnerSubscriptionAndStatus(t *testing.T) {
	g, subsOf, orders := listsHistory(t)
	m := g.m

	p, err := m.Subscriptions(SubscriptionsQuery{OwnerID: "cust-1"})
	if err != nil || len(p.Subscriptions) != 2 || p.NextCursor != "" ||
		p.Subscriptions[0].SubscriptionID != subsOf["cust-1"][0] || p.Subscriptions[1].SubscriptionID != subsOf["cust-1"][1] {
		t.Fatalf("cust-1's subscriptions: %+v, %v", p, err)
	}
	for _, s := range p.Subscriptions {
		if s.OwnerID != "cust-1" || s.Holder.Name != "Hcust-1" {
			t.Fatalf("summary %+v", s)
		}
	}
	// Order 1 (cust-1) was cancelled and released its slot, order 4 (cust-1) was granted;
	// order 3 (cust-0) is still in the cart.
	if p.Subscriptions[0].OpenOrderID != nil || p.Subscriptions[1].OpenOrderID != nil {
		t.Fatalf("open orders: %+v", p.Subscriptions)
	}
	if p, _ := m.Subscriptions(SubscriptionsQuery{OwnerID: "cust-0"}); p.Subscriptions[1].OpenOrderID == nil || *p.Subscriptions[1].OpenOrderID != orders[3] {
		t.Fatalf("cust-0's open order: %+v", p.Subscriptions)
	}
	if p, _ := m.Subscriptions(SubscriptionsQuery{OwnerID: "nobody"}); len(p.Subscriptions) != 0 {
		t.Fatalf("an unknown owner has %+v", p)
	}

	cases := []struct {
		name string
		q    OrdersQuery
		want []uuid.UUID
	}{
		{"all", OrdersQuery{}, orders},
		{"owner", OrdersQuery{OwnerID: "cust-0"}, []uuid.UUID{orders[0], orders[3]}},
		{"subscription", OrdersQuery{SubscriptionID: subsOf["cust-2"][0]}, []uuid.UUID{orders[2]}},
		{"paid", OrdersQuery{Status: domain.StatusPaid}, []uuid.UUID{orders[0], orders[4]}},
		{"confirmed", OrdersQuery{Status: domain.StatusConfirmed}, []uuid.UUID{orders[2]}},
		{"cart", OrdersQuery{Status: domain.StatusCart}, []uuid.UUID{orders[3]}},
		{"cancelled", OrdersQuery{Status: domain.StatusCancelled}, []uuid.UUID{orders[1], orders[5]}},
		{"owner and status", OrdersQuery{OwnerID: "cust-2", Status: domain.StatusCancelled}, []uuid.UUID{orders[5]}},
		{"subscription of another status", OrdersQuery{SubscriptionID: subsOf["cust-2"][0], Status: domain.StatusPaid}, []uuid.UUID{}},
	}
	for _, c := range cases {
		p, err := m.Orders(c.q)
		if err != nil || !slices.Equal(orderIDs(p), c.want) {
			t.Errorf("%s: %v (%v), want %v", c.name, orderIDs(p), err, c.want)
		}
	}
	o, _ := m.Orders(OrdersQuery{SubscriptionID: subsOf["cust-0"][0]})
	if got := o.Orders[0]; got.Status != domain.StatusPaid || got.PaidCents != 6100 || got.PaymentMethod != "bank-transfer" ||
		got.Channel != "panel" || got.GB != 1 || got.ConfirmedAt.IsZero() {
		t.Fatalf("summary %+v", got)
	}
}

// The calendar's endings (docs/RULES.md) move an order between lists too: a cart that is
// abandoned, a partly paid order that becomes overdue, a quote priced again on a later day.
func TestListsFollowTheCalendarsEndings(t *testing.T) {
	g, _, orders := listsHistory(t)
	m := g.m
	when := at(2025, 2, 10, 9)
	cart, confirmed := orders[3], orders[2]
	g.on(eventstore.StreamName("order", cart), when,
		domain.QuoteRepriced{Quote: domain.Quote{GB: 1, CoTermination: true, TotalCents: 6300}, RepricedAt: when},
		domain.OrderAbandoned{AbandonedAt: when})
	g.on(eventstore.StreamName("order", confirmed), when,
		domain.PaymentRegistered{AmountCents: 100, PaidCents: 100, Reference: "part"},
		domain.OrderOverdue{PaidCents: 100, DueCents: 6000, OverdueAt: when})
	for status, want := range map[domain.OrderStatus][]uuid.UUID{
		domain.StatusAbandoned: {cart}, domain.StatusOverdue: {confirmed},
		domain.StatusCart: {}, domain.StatusConfirmed: {},
	} {
		if p, _ := m.Orders(OrdersQuery{Status: status}); !slices.Equal(orderIDs(p), want) {
			t.Errorf("%s: %v, want %v", status, orderIDs(p), want)
		}
	}
	p, _ := m.Orders(OrdersQuery{Status: domain.StatusAbandoned})
	if p.Orders[0].TotalCents != 6300 {
		t.Errorf("the abandoned cart's total %d, want the repriced 6300", p.Orders[0].TotalCents)
	}
}

func TestListPagesWalkEveryEntryOnce(t *testing.T) {
	g, _, orders := listsHistory(t)
	for _, limit := range []int{1, 2, 4, 5, 6, 100} {
		var got []uuid.UUID
		cursor, pages := "", 0
		for {
			p, err := g.m.Orders(OrdersQuery{Cursor: cursor, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Orders) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(p.Orders))
			}
			got = append(got, orderIDs(p)...)
			pages++
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, orders) || pages != (len(orders)+limit-1)/limit {
			t.Fatalf("limit %d: %d pages, %v, want %v", limit, pages, got, orders)
		}
	}
	// A cursor survives an order changing status in between: it names a place, not an offset.
	p, _ := g.m.Orders(OrdersQuery{Status: domain.StatusCancelled, Limit: 1})
	g.on(eventstore.StreamName("order", orders[3]), now, domain.OrderCancelled{CancelledAt: now})
	rest, err := g.m.Orders(OrdersQuery{Status: domain.StatusCancelled, Cursor: p.NextCursor, Limit: 1})
	if err != nil || !slices.Equal(orderIDs(rest), []uuid.UUID{orders[3]}) {
		t.Fatalf("after order 3 was cancelled: %v, %v", orderIDs(rest), err)
	}
	if _, err := g.m.Orders(OrdersQuery{Cursor: "not a cursor"}); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("a bad cursor: %v", err)
	}
}

// A snapshot restores the same lists, and the same digest.
func TestListsSnapshotRoundTrip(t *testing.T) {
	g, _, _ := listsHistory(t)
	b, err := g.m.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	m := NewListsModel()
	if err := m.UnmarshalState(b); err != nil {
		t.Fatal(err)
	}
	d1, _ := Digest(g.m)
	d2, _ := Digest(m)
	if d1 != d2 {
		t.Fatalf("digest %s, after a round trip %s", d1, d2)
	}
	for _, q := range []OrdersQuery{{}, {Status: domain.StatusCart}, {OwnerID: "cust-2"}} {
		a, _ := g.m.Orders(q)
		b, _ := m.Orders(q)
		if !slices.Equal(orderIDs(a), orderIDs(b)) {
			t.Fatalf("%+v: %v, after a round trip %v", q, orderIDs(a), orderIDs(b))
		}
	}
	var buf bytes.Buffer
	if err := exportCSV(&buf, m, now); err != nil || !bytes.Contains(buf.Bytes(), []byte("2025-01-10T08:00:00Z")) {
		t.Fatalf("CSV export (%v):\n%s", err, buf.String())
	}
}

func TestPageExpiries(t *testing.T) {
	var rows []ExpiryView
	for i := range 25 {
		id := uuid.New()
		rows = append(rows, ExpiryView{SubscriptionID: id, Kind: domain.KindBase, ExpiresOn: day(2025, 3, 1+i%5)})
		if i%3 == 0 {
			o := uuid.New()
			rows = append(rows, ExpiryView{SubscriptionID: id, Kind: KindSpace, OrderID: &o, ExpiresOn: day(2025, 3, 1+i%5)})
		}
	}
	sortExpiries(rows)
	var got []ExpiryView
	cursor := ""
	for {
		page, next, err := PageExpiries(rows, cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 7 {
			t.Fatalf("a page of %d", len(page))
		}
		got = append(got, page...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(got) != len(rows) {
		t.Fatalf("%d rows paged, want %d", len(got), len(rows))
	}
	for i := range rows {
		if compareExpiry(got[i], rows[i]) != 0 {
			t.Fatalf("row %d: %+v, want %+v", i, got[i], rows[i])
		}
	}
	if _, _, err := PageExpiries(rows, "bm90IGEgY3Vyc29y", 7); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("a bad cursor: %v", err)
	}
}

// Timestamps in CSV are RFC 3339 to the second.
func TestCSVStampsAreSeconds(t *testing.T) {
	v := PendingView{ConfirmedAt: time.Date(2025, 1, 2, 3, 4, 5, 678900000, time.UTC)}
	if got := v.CSVRecord()[12]; got != "2025-01-02T03:04:05Z" {
		t.Fatalf("confirmed_at %q", got)
	}
}

// BenchmarkListsQuery pages through 100,000 orders of 10,000 owners: a customer's orders,
// and a status across everyone.
func BenchmarkListsQuery(b *testing.B) {
	const n = 100_000
	m := NewListsModel()
	statuses := []domain.Event{domain.CheckoutStarted{}, domain.OrderCancelled{}, domain.OrderExpired{}}
	for i := range n {
		id, sub := uuid.New(), uuid.New()
		stream := eventstore.StreamName("order", id)
		m.Apply(eventstore.Envelope{Stream: stream, Position: uint64(2*i + 1)}, domain.SpaceIncreaseRequested{
			OrderID: id, SubscriptionID: sub, OwnerID: fmt.Sprintf("cust-%d", i%10_000), Channel: "app",
			Quote: domain.Quote{GB: 1, TotalCents: 3050}})
		m.Apply(eventstore.Envelope{Stream: stream, Position: uint64(2*i + 2)}, statuses[i%3])
	}
	b.Run("owner", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if p, _ := m.Orders(OrdersQuery{OwnerID: fmt.Sprintf("cust-%d", i%10_000), Limit: 20}); len(p.Orders) != 10 {
				b.Fatalf("%d orders", len(p.Orders))
			}
			i++
		}
	})
	b.Run("status-page", func(b *testing.B) {
		cursor := ""
		for b.Loop() {
			p, _ := m.Orders(OrdersQuery{Status: domain.StatusCancelled, Cursor: cursor, Limit: 100})
			cursor = p.NextCursor
		}
	})
}
