package projections

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// Age buckets of the pending-payment summary, in days since confirmation.
const (
	Bucket0to7    = "0-7"
	Bucket8to30   = "8-30"
	Bucket31to60  = "31-60"
	BucketOver60  = "over-60"
	maxPageLimit  = 1000
	defaultLimit  = 100
	compactAtDead = 256
)

// AgeBuckets lists the buckets in order.
var AgeBuckets = []string{Bucket0to7, Bucket8to30, Bucket31to60, BucketOver60}

// ErrBadCursor: the cursor was not one a previous page gave.
var ErrBadCursor = errors.New("projections: bad cursor")

// PendingModel holds every confirmed, unpaid order (overdue ones too: partly paid past
// their term). Paid, cancelled and expired orders leave it. Beside the orders it keeps
// indexes sorted by confirmation time (all orders, and per method), so a page is a binary
// search and a short walk, never a sort. It also holds the credits due to customers (money
// received that no order took), shown to finance beside the pending payments, and the open
// carts with the day each was last touched, which the sweeper asks for.
type PendingModel struct {
	orders   map[uuid.UUID]*pendingOrder
	all      *pendingIndex
	byMethod map[string]*pendingIndex
	credits  map[uuid.UUID]*pendingCredit // by the CreditDue event's id
	carts    map[uuid.UUID]domain.Date    // open carts and order forms: the day last touched

	// changes counts applied changes; the summary cache is valid for one (changes, day).
	// Queries run concurrently under the runner's read lock: cacheMu guards the cache.
	changes      uint64
	cacheMu      sync.Mutex
	cacheDay     domain.Date
	cacheChanges uint64
	cache        *PendingSummary
}

type pendingOrder struct {
	SubscriptionID         uuid.UUID   `json:"subscriptionId"`
	OwnerID                string      `json:"ownerId"`
	HolderName             string      `json:"holderName"`
	HolderEmail            string      `json:"holderEmail"`
	Method                 string      `json:"method"`
	TotalCents             int64       `json:"totalCents"`
	PaidCents              int64       `json:"paidCents"`
	ConfirmedAt            time.Time   `json:"confirmedAt"`
	PayBy                  domain.Date `json:"payBy"`
	ExpectedRegistrationOn domain.Date `json:"expectedRegistrationOn,omitzero"`
	Overdue                bool        `json:"overdue,omitempty"`
}

type pendingCredit struct {
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	HolderName     string    `json:"holderName"`
	HolderEmail    string    `json:"holderEmail"`
	AmountCents    int64     `json:"amountCents"`
	Reason         string    `json:"reason"`
	Reference      string    `json:"reference,omitempty"`
	RecordedAt     time.Time `json:"recordedAt"`
}

// NewPendingModel returns an empty pending-payment model.
func NewPendingModel() *PendingModel {
	return &PendingModel{
		orders:   map[uuid.UUID]*pendingOrder{},
		all:      &pendingIndex{},
		byMethod: map[string]*pendingIndex{},
		credits:  map[uuid.UUID]*pendingCredit{},
		carts:    map[uuid.UUID]domain.Date{},
	}
}

func (*PendingModel) Name() string { return PendingName }

// Version 2: overdue orders, credits due and open carts.
func (*PendingModel) Version() int { return 2 }

// Apply folds one event.
func (m *PendingModel) Apply(env eventstore.Envelope, ev domain.Event) {
	switch e := ev.(type) {
	case domain.OrderConfirmed:
		if _, dup := m.orders[e.OrderID]; dup {
			return
		}
		m.add(e.OrderID, &pendingOrder{
			SubscriptionID: e.SubscriptionID, OwnerID: e.OwnerID,
			HolderName: e.Recipient.Name, HolderEmail: e.Recipient.Email,
			Method: e.PaymentMethod, TotalCents: e.Quote.TotalCents, ConfirmedAt: e.ConfirmedAt,
			PayBy: e.PayBy, ExpectedRegistrationOn: e.ExpectedRegistration(),
		})
		delete(m.carts, e.OrderID)
	case domain.PaymentRegistered:
		if o := m.order(env.Stream); o != nil {
			o.PaidCents = e.PaidCents
			m.changes++
		}
	case domain.OrderOverdue:
		if o := m.order(env.Stream); o != nil {
			o.Overdue = true
			m.changes++
		}
	case domain.CreditDue:
		if _, dup := m.credits[env.ID]; !dup {
			m.credits[env.ID] = &pendingCredit{
				OrderID: e.OrderID, SubscriptionID: e.SubscriptionID, OwnerID: e.OwnerID,
				HolderName: e.Holder.Name, HolderEmail: e.Holder.Email, AmountCents: e.AmountCents,
				Reason: e.Reason, Reference: e.Reference, RecordedAt: e.RecordedAt,
			}
			m.changes++
		}
	case domain.SpaceIncreaseRequested:
		m.carts[e.OrderID] = e.Quote.OrderDate
	case domain.QuoteRepriced:
		m.touch(env.Stream, e.Quote.OrderDate)
	case domain.CoTerminationToggled:
		m.touch(env.Stream, e.Quote.OrderDate)
	case domain.OrderModified:
		m.touch(env.Stream, e.Quote.OrderDate)
	case domain.OrderPaid, domain.OrderCancelled, domain.OrderExpired, domain.OrderAbandoned:
		if id, ok := streamID(env.Stream); ok {
			m.remove(id)
			delete(m.carts, id)
		}
	}
}

// touch moves an open cart's last day to day.
func (m *PendingModel) touch(stream string, day domain.Date) {
	if id, ok := streamID(stream); ok {
		if _, open := m.carts[id]; open {
			m.carts[id] = day
		}
	}
}

// Due lists, as of now, the orders the sweeper has work for: confirmed orders past their
// last day to pay (to expire, or mark overdue when partly paid), and carts or order forms
// last touched abandonDays or more days ago. The decider checks each again.
func (m *PendingModel) Due(now time.Time, abandonDays int) []uuid.UUID {
	today := domain.DateOf(now)
	var ids []uuid.UUID
	for _, k := range m.all.keys {
		if o := m.orders[k.id]; !k.dead && !o.Overdue && today.After(o.PayBy) {
			ids = append(ids, k.id)
		}
	}
	var carts []uuid.UUID
	for id, last := range m.carts {
		if !today.Before(last.AddDays(abandonDays)) {
			carts = append(carts, id)
		}
	}
	slices.SortFunc(carts, compareIDs)
	return append(ids, carts...)
}

func (m *PendingModel) order(stream string) *pendingOrder {
	id, ok := streamID(stream)
	if !ok {
		return nil
	}
	return m.orders[id]
}

func (m *PendingModel) add(id uuid.UUID, o *pendingOrder) {
	m.orders[id] = o
	k := pendingKey{at: o.ConfirmedAt.UnixNano(), id: id}
	m.all.insert(k)
	x := m.byMethod[o.Method]
	if x == nil {
		x = &pendingIndex{}
		m.byMethod[o.Method] = x
	}
	x.insert(k)
	m.changes++
}

func (m *PendingModel) remove(id uuid.UUID) {
	o, ok := m.orders[id]
	if !ok {
		return
	}
	delete(m.orders, id)
	k := pendingKey{at: o.ConfirmedAt.UnixNano(), id: id}
	m.all.remove(k)
	if x := m.byMethod[o.Method]; x != nil {
		x.remove(k)
	}
	m.changes++
}

type pendingState struct {
	Orders  map[uuid.UUID]*pendingOrder  `json:"orders"`
	Credits map[uuid.UUID]*pendingCredit `json:"credits"`
	Carts   map[uuid.UUID]domain.Date    `json:"carts"`
}

func (m *PendingModel) MarshalState() ([]byte, error) {
	return json.Marshal(pendingState{m.orders, m.credits, m.carts})
}

func (m *PendingModel) UnmarshalState(b []byte) error {
	var st pendingState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	fresh := NewPendingModel()
	m.orders, m.all, m.byMethod, m.changes, m.cache = fresh.orders, fresh.all, fresh.byMethod, m.changes+1, nil
	m.credits, m.carts = fresh.credits, fresh.carts
	maps.Copy(m.credits, st.Credits)
	maps.Copy(m.carts, st.Carts)
	// Build the indexes sorted at once: inserting in map order would shift the slice each time.
	for id, o := range st.Orders {
		m.orders[id] = o
		m.all.keys = append(m.all.keys, pendingKey{at: o.ConfirmedAt.UnixNano(), id: id})
	}
	slices.SortFunc(m.all.keys, pendingKey.compare)
	for _, k := range m.all.keys {
		method := m.orders[k.id].Method
		x := m.byMethod[method]
		if x == nil {
			x = &pendingIndex{}
			m.byMethod[method] = x
		}
		x.keys = append(x.keys, k)
	}
	return nil
}

// Len is the number of pending orders.
func (m *PendingModel) Len() int { return len(m.orders) }

// PendingView is one confirmed, unpaid order as of a day. Amounts are in cents.
type PendingView struct {
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	HolderName     string    `json:"holderName"`
	HolderEmail    string    `json:"holderEmail"`
	Method         string    `json:"method"`
	AmountDueCents int64     `json:"amountDueCents"`
	PaidCents      int64     `json:"paidCents"`
	RemainingCents int64     `json:"remainingCents"`
	ConfirmedAt    time.Time `json:"confirmedAt"`
	// ExpectedRegistrationOn is the confirmation day plus the working days the method takes
	// to be registered (Monday to Friday, not Italian national holidays): the day the email
	// names too.
	ExpectedRegistrationOn domain.Date `json:"expectedRegistrationOn"`
	// PayBy is the last day to pay before the order expires.
	PayBy     domain.Date `json:"payBy"`
	AgeDays   int         `json:"ageDays"`
	AgeBucket string      `json:"ageBucket"`
	// Status is "confirmed", or "overdue": partly paid and past PayBy (an operator may
	// cancel it, and what was paid becomes a credit due).
	Status string `json:"status"`
}

func (o *pendingOrder) view(id uuid.UUID, today domain.Date) PendingView {
	confirmed := domain.DateOf(o.ConfirmedAt)
	age := max(confirmed.DaysUntil(today), 0)
	status := string(domain.StatusConfirmed)
	if o.Overdue {
		status = string(domain.StatusOverdue)
	}
	// A snapshot of an older fold, without the day, is not read: the model's version
	// changed with it, and the runner folds the log again.
	expected := o.ExpectedRegistrationOn
	return PendingView{
		Status:  status,
		OrderID: id, SubscriptionID: o.SubscriptionID, OwnerID: o.OwnerID,
		HolderName: o.HolderName, HolderEmail: o.HolderEmail, Method: o.Method,
		AmountDueCents: o.TotalCents, PaidCents: o.PaidCents, RemainingCents: o.TotalCents - o.PaidCents,
		ConfirmedAt:            o.ConfirmedAt,
		ExpectedRegistrationOn: expected,
		PayBy:                  o.PayBy, AgeDays: age, AgeBucket: ageBucket(age),
	}
}

func ageBucket(days int) string {
	switch {
	case days <= 7:
		return Bucket0to7
	case days <= 30:
		return Bucket8to30
	case days <= 60:
		return Bucket31to60
	}
	return BucketOver60
}

// PendingQuery selects a page of pending orders, oldest confirmation first.
type PendingQuery struct {
	// Method keeps only orders to be paid with that method ("" for all).
	Method string
	// MinAgeDays keeps only orders confirmed at least that many days ago.
	MinAgeDays int
	// Cursor is a previous page's NextCursor ("" for the first page). A cursor names a place
	// in the order, not an offset: orders that come and go do not shift the pages after it.
	Cursor string
	// Limit is the page size: default 100, at most 1000.
	Limit int
}

// PendingPage is one page of pending orders; NextCursor is "" on the last page.
type PendingPage struct {
	Orders     []PendingView `json:"orders"`
	NextCursor string        `json:"nextCursor"`
	Today      domain.Date   `json:"today"`
}

// Page returns the orders q selects, as of now.
func (m *PendingModel) Page(q PendingQuery, now time.Time) (PendingPage, error) {
	limit := pageLimit(q.Limit)
	if q.MinAgeDays < 0 {
		return PendingPage{}, fmt.Errorf("projections: minimum age %d is negative", q.MinAgeDays)
	}
	today := domain.DateOf(now)
	page := PendingPage{Orders: []PendingView{}, Today: today}
	x := m.all
	if q.Method != "" {
		if x = m.byMethod[q.Method]; x == nil {
			return page, nil
		}
	}
	start := 0
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor)
		if err != nil {
			return PendingPage{}, err
		}
		start = after(x.keys, k, pendingKey.compare)
	}
	// Orders confirmed before the start of (today - MinAgeDays + 1) in Rome are old enough.
	cut := today.AddDays(1 - q.MinAgeDays)
	cutoff := time.Date(cut.Year, cut.Month, cut.Day, 0, 0, 0, 0, domain.Rome).UnixNano()
	if q.MinAgeDays == 0 {
		cutoff = math.MaxInt64 // every order, even one confirmed after now (age 0)
	}
	for i := start; i < len(x.keys); i++ {
		k := x.keys[i]
		if k.at >= cutoff {
			break
		}
		if k.dead {
			continue
		}
		if len(page.Orders) == limit {
			last := page.Orders[len(page.Orders)-1]
			page.NextCursor = encodeCursor(pendingKey{at: last.ConfirmedAt.UnixNano(), id: last.OrderID})
			break
		}
		page.Orders = append(page.Orders, m.orders[k.id].view(k.id, today))
	}
	return page, nil
}

// All returns every pending order, oldest confirmation first.
func (m *PendingModel) All(now time.Time) []PendingView {
	today := domain.DateOf(now)
	out := make([]PendingView, 0, len(m.orders))
	for _, k := range m.all.keys {
		if !k.dead {
			out = append(out, m.orders[k.id].view(k.id, today))
		}
	}
	return out
}

// PendingTotals sums a group of pending orders, in cents.
type PendingTotals struct {
	Count          int   `json:"count"`
	AmountDueCents int64 `json:"amountDueCents"`
	PaidCents      int64 `json:"paidCents"`
	RemainingCents int64 `json:"remainingCents"`
}

func (t *PendingTotals) add(o *pendingOrder) {
	t.Count++
	t.AmountDueCents += o.TotalCents
	t.PaidCents += o.PaidCents
	t.RemainingCents += o.TotalCents - o.PaidCents
}

// MethodTotals are the totals of one payment method.
type MethodTotals struct {
	Method string `json:"method"`
	PendingTotals
}

// BucketTotals are the totals of one age bucket.
type BucketTotals struct {
	Bucket string `json:"bucket"`
	PendingTotals
}

// PendingSummary totals the pending orders by method and by age bucket; each grouping
// adds up to Total exactly.
type PendingSummary struct {
	Today    domain.Date    `json:"today"`
	Total    PendingTotals  `json:"total"`
	ByMethod []MethodTotals `json:"byMethod"`
	ByAge    []BucketTotals `json:"byAge"`
	// Overdue are the partly paid orders past their term, among Total.
	Overdue PendingTotals `json:"overdue"`
	// CreditsDue totals the money owed back to customers, beside what is pending.
	CreditsDue CreditTotals `json:"creditsDue"`
}

// Summary totals the pending orders as of now. It is cached until the model changes or
// the day does.
func (m *PendingModel) Summary(now time.Time) PendingSummary {
	today := domain.DateOf(now)
	m.cacheMu.Lock()
	defer m.cacheMu.Unlock()
	if m.cache != nil && m.cacheDay == today && m.cacheChanges == m.changes {
		return m.cache.clone()
	}
	s := m.summary(today)
	m.cache, m.cacheDay, m.cacheChanges = &s, today, m.changes
	return s.clone()
}

func (m *PendingModel) summary(today domain.Date) PendingSummary {
	s := PendingSummary{Today: today, ByMethod: []MethodTotals{}, ByAge: make([]BucketTotals, len(AgeBuckets))}
	for i, b := range AgeBuckets {
		s.ByAge[i].Bucket = b
	}
	byMethod := map[string]*PendingTotals{}
	// Bucket boundaries as instants: an order's bucket follows its Rome confirmation day.
	bounds := [3]int64{}
	for i, d := range []int{7, 30, 60} {
		day := today.AddDays(-d)
		bounds[i] = time.Date(day.Year, day.Month, day.Day, 0, 0, 0, 0, domain.Rome).UnixNano()
	}
	for _, c := range m.credits {
		s.CreditsDue.Count++
		s.CreditsDue.AmountCents += c.AmountCents
	}
	for _, o := range m.orders {
		if o.Overdue {
			s.Overdue.add(o)
		}
		s.Total.add(o)
		t := byMethod[o.Method]
		if t == nil {
			t = &PendingTotals{}
			byMethod[o.Method] = t
		}
		t.add(o)
		at := o.ConfirmedAt.UnixNano()
		b := 3
		switch {
		case at >= bounds[0]:
			b = 0
		case at >= bounds[1]:
			b = 1
		case at >= bounds[2]:
			b = 2
		}
		s.ByAge[b].add(o)
	}
	for method, t := range byMethod {
		s.ByMethod = append(s.ByMethod, MethodTotals{Method: method, PendingTotals: *t})
	}
	slices.SortFunc(s.ByMethod, func(a, b MethodTotals) int { return cmp.Compare(a.Method, b.Method) })
	return s
}

func (s PendingSummary) clone() PendingSummary {
	s.ByMethod = slices.Clone(s.ByMethod)
	s.ByAge = slices.Clone(s.ByAge)
	return s
}

// pendingKey orders pending orders by confirmation instant, then id.
type pendingKey struct {
	at   int64
	id   uuid.UUID
	dead bool
}

func (k pendingKey) compare(o pendingKey) int {
	if c := cmp.Compare(k.at, o.at); c != 0 {
		return c
	}
	return compareIDs(k.id, o.id)
}

// pendingIndex is a sorted slice of keys. Orders arrive in confirmation order, so an insert
// is nearly always an append; a removal only marks its key dead, and the slice is compacted
// once dead keys are many, so neither costs a copy of the whole slice each time.
type pendingIndex struct {
	keys []pendingKey
	dead int
}

func (x *pendingIndex) search(k pendingKey) (int, bool) {
	return slices.BinarySearchFunc(x.keys, k, pendingKey.compare)
}

func (x *pendingIndex) insert(k pendingKey) {
	if n := len(x.keys); n == 0 || x.keys[n-1].compare(k) < 0 {
		x.keys = append(x.keys, k)
		return
	}
	i, found := x.search(k)
	if found {
		if x.keys[i].dead {
			x.keys[i].dead = false
			x.dead--
		}
		return
	}
	x.keys = slices.Insert(x.keys, i, k)
}

func (x *pendingIndex) remove(k pendingKey) {
	i, found := x.search(k)
	if !found || x.keys[i].dead {
		return
	}
	x.keys[i].dead = true
	x.dead++
	if x.dead >= compactAtDead && x.dead*2 >= len(x.keys) {
		x.keys = slices.DeleteFunc(x.keys, func(k pendingKey) bool { return k.dead })
		x.dead = 0
	}
}

func encodeCursor(k pendingKey) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(k.at))
	copy(b[8:], k.id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(s string) (pendingKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return pendingKey{}, fmt.Errorf("%w: %q", ErrBadCursor, s)
	}
	var k pendingKey
	k.at = int64(binary.BigEndian.Uint64(b[:8]))
	copy(k.id[:], b[8:])
	return k, nil
}

// Page keeps the credits after cursor (a previous page's NextCursor, "" for the first),
// at most limit of them (default 100, at most 1000); the totals stay those of every
// credit. The next page's cursor is "" on the last page.
func (c CreditsDue) Page(cursor string, limit int) (CreditsDue, string, error) {
	limit = pageLimit(limit)
	start := 0
	if cursor != "" {
		k, err := decodeCursor(cursor)
		if err != nil {
			return CreditsDue{}, "", err
		}
		start = after(c.Credits, k, func(v CreditView, k pendingKey) int {
			return pendingKey{at: v.RecordedAt.UnixNano(), id: v.CreditID}.compare(k)
		})
	}
	end, next := min(start+limit, len(c.Credits)), ""
	if end < len(c.Credits) {
		last := c.Credits[end-1]
		next = encodeCursor(pendingKey{at: last.RecordedAt.UnixNano(), id: last.CreditID})
	}
	c.Credits = c.Credits[start:end]
	return c, next, nil
}

// CreditTotals sums credits due, in cents.
type CreditTotals struct {
	Count       int   `json:"count"`
	AmountCents int64 `json:"amountCents"`
}

// CreditView is one credit due to a customer as of a day: money received for an order that
// the order did not take (an excess, a payment on an ended order or for a subscription no
// longer active, what was paid on an order an operator cancelled).
type CreditView struct {
	CreditID       uuid.UUID `json:"creditId"` // the CreditDue event's id
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	HolderName     string    `json:"holderName"`
	HolderEmail    string    `json:"holderEmail"`
	AmountCents    int64     `json:"amountCents"`
	Reason         string    `json:"reason"`
	Reference      string    `json:"reference"`
	RecordedAt     time.Time `json:"recordedAt"`
	AgeDays        int       `json:"ageDays"`
}

// ReasonTotals are the totals of one reason for credits.
type ReasonTotals struct {
	Reason string `json:"reason"`
	CreditTotals
}

// CreditsDue is every credit due, oldest first, with totals that add up: by reason, and all.
type CreditsDue struct {
	Today    domain.Date    `json:"today"`
	Credits  []CreditView   `json:"credits"`
	Total    CreditTotals   `json:"total"`
	ByReason []ReasonTotals `json:"byReason"`
}

// CreditsDue lists the credits due as of now.
func (m *PendingModel) CreditsDue(now time.Time) CreditsDue {
	today := domain.DateOf(now)
	out := CreditsDue{Today: today, Credits: make([]CreditView, 0, len(m.credits)), ByReason: []ReasonTotals{}}
	byReason := map[string]*CreditTotals{}
	for id, c := range m.credits {
		out.Credits = append(out.Credits, CreditView{
			CreditID: id, OrderID: c.OrderID, SubscriptionID: c.SubscriptionID, OwnerID: c.OwnerID,
			HolderName: c.HolderName, HolderEmail: c.HolderEmail, AmountCents: c.AmountCents, Reason: c.Reason,
			Reference: c.Reference, RecordedAt: c.RecordedAt, AgeDays: max(domain.DateOf(c.RecordedAt).DaysUntil(today), 0),
		})
		out.Total.Count++
		out.Total.AmountCents += c.AmountCents
		t := byReason[c.Reason]
		if t == nil {
			t = &CreditTotals{}
			byReason[c.Reason] = t
		}
		t.Count++
		t.AmountCents += c.AmountCents
	}
	slices.SortFunc(out.Credits, func(a, b CreditView) int {
		if c := a.RecordedAt.Compare(b.RecordedAt); c != 0 {
			return c
		}
		return compareIDs(a.CreditID, b.CreditID)
	})
	for r, t := range byReason {
		out.ByReason = append(out.ByReason, ReasonTotals{Reason: r, CreditTotals: *t})
	}
	slices.SortFunc(out.ByReason, func(a, b ReasonTotals) int { return cmp.Compare(a.Reason, b.Reason) })
	return out
}
