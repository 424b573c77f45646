package projections

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// ListsName is the model behind the frontends' lists: subscriptions by owner, orders by
// subscription, owner and status.
const ListsName = "lists"

// Page sizes of every list: the default and the most one page holds.
const (
	DefaultPageLimit = defaultLimit
	MaxPageLimit     = maxPageLimit
)

// ListsModel keeps a summary of every subscription and order, in the order they were
// created (a count of the creations folded, so that the order and the digest are the same
// on every backend, whatever its positions), with indexes by owner, subscription and
// status. The indexes are derived from the summaries: only the summaries are the state
// (and the digest); the indexes are rebuilt when a snapshot is loaded.
type ListsModel struct {
	created uint64 // subscriptions and orders folded so far: the next one's Seq
	subs    map[uuid.UUID]*listSub
	orders  map[uuid.UUID]*listOrder

	allSubs        keyIndex
	subsByOwner    map[string]*keyIndex
	allOrders      keyIndex
	ordersByOwner  map[string]*keyIndex
	ordersBySub    map[uuid.UUID]*keyIndex
	ordersByStatus map[domain.OrderStatus]*keyIndex
}

// listSub is a subscription as the model keeps it: its place in the creation order and
// the line its lists show.
type listSub struct {
	Seq uint64 `json:"seq"`
	SubscriptionLine
}

// SubscriptionLine is what the lists keep of a subscription and show of it.
type SubscriptionLine struct {
	OwnerID  string        `json:"ownerId"`
	Holder   domain.Holder `json:"holder"`
	Language string        `json:"language"`
	BaseGB   int           `json:"baseGB"`
	OpenedOn domain.Date   `json:"openedOn"`
	// OpenOrderID is the order in progress, when there is one.
	OpenOrderID *uuid.UUID `json:"openOrderId,omitempty"`
}

// listOrder is an order as the model keeps it: its place in the creation order and the
// line its lists show.
type listOrder struct {
	Seq uint64 `json:"seq"`
	OrderLine
}

// OrderLine is what the lists keep of an order and show of it. Amounts are in cents.
type OrderLine struct {
	SubscriptionID uuid.UUID          `json:"subscriptionId"`
	OwnerID        string             `json:"ownerId"`
	Channel        string             `json:"channel"`
	Status         domain.OrderStatus `json:"status"`
	GB             int                `json:"gb"`
	CoTermination  bool               `json:"coTermination"`
	TotalCents     int64              `json:"totalCents"`
	PaidCents      int64              `json:"paidCents"`
	PaymentMethod  string             `json:"paymentMethod,omitempty"`
	RequestedAt    time.Time          `json:"requestedAt"`
	ConfirmedAt    time.Time          `json:"confirmedAt,omitzero"`
}

// NewListsModel returns an empty lists model.
func NewListsModel() *ListsModel {
	return &ListsModel{
		subs: map[uuid.UUID]*listSub{}, orders: map[uuid.UUID]*listOrder{},
		subsByOwner: map[string]*keyIndex{}, ordersByOwner: map[string]*keyIndex{},
		ordersBySub: map[uuid.UUID]*keyIndex{}, ordersByStatus: map[domain.OrderStatus]*keyIndex{},
	}
}

func (*ListsModel) Name() string { return ListsName }
func (*ListsModel) Version() int { return 2 }

// Apply folds one event.
func (m *ListsModel) Apply(env eventstore.Envelope, ev domain.Event) {
	switch e := ev.(type) {
	case domain.SubscriptionOpened:
		if _, dup := m.subs[e.SubscriptionID]; dup {
			return
		}
		m.created++
		s := &listSub{Seq: m.created, SubscriptionLine: SubscriptionLine{OwnerID: e.OwnerID, Holder: e.Holder,
			Language: e.Language, BaseGB: e.BaseGB, OpenedOn: e.OpenedOn}}
		m.subs[e.SubscriptionID] = s
		m.indexSub(e.SubscriptionID, s)
	case domain.OrderSlotReserved:
		if s := m.sub(env.Stream); s != nil {
			id := e.OrderID
			s.OpenOrderID = &id
		}
	case domain.OrderSlotReleased:
		m.closeSlot(env.Stream, e.OrderID)
	case domain.SpaceAdded:
		m.closeSlot(env.Stream, e.OrderID)
	case domain.SpaceIncreaseRequested:
		if _, dup := m.orders[e.OrderID]; dup {
			return
		}
		m.created++
		o := &listOrder{Seq: m.created, OrderLine: OrderLine{SubscriptionID: e.SubscriptionID, OwnerID: e.OwnerID,
			Channel: e.Channel, Status: domain.StatusCart, RequestedAt: e.RequestedAt}}
		o.quote(e.Quote)
		m.orders[e.OrderID] = o
		m.indexOrder(e.OrderID, o)
	default:
		m.applyOrder(env, ev)
	}
}

// applyOrder folds an event of an order that exists, as the order's decider would.
func (m *ListsModel) applyOrder(env eventstore.Envelope, ev domain.Event) {
	id, ok := streamID(env.Stream)
	if !ok {
		return
	}
	o := m.orders[id]
	if o == nil {
		return
	}
	status := o.Status
	switch e := ev.(type) {
	case domain.CoTerminationToggled:
		o.quote(e.Quote)
	case domain.QuoteRepriced:
		o.quote(e.Quote)
	case domain.CheckoutStarted:
		status = domain.StatusCheckout
	case domain.PaymentMethodSelected:
		o.PaymentMethod = e.Method
	case domain.OrderModified:
		o.quote(e.Quote)
		o.PaymentMethod, status = "", domain.StatusCart
	case domain.OrderConfirmed:
		o.quote(e.Quote)
		o.PaymentMethod, o.ConfirmedAt, status = e.PaymentMethod, e.ConfirmedAt, domain.StatusConfirmed
	case domain.PaymentRegistered:
		o.PaidCents = e.PaidCents
	case domain.OrderPaid:
		status = domain.StatusPaid
	case domain.OrderCancelled:
		status = domain.StatusCancelled
	case domain.OrderExpired:
		status = domain.StatusExpired
	case domain.OrderAbandoned:
		status = domain.StatusAbandoned
	case domain.OrderOverdue:
		status = domain.StatusOverdue
	default:
		return
	}
	if status != o.Status {
		k := listKey{seq: o.Seq, id: id}
		if x := m.ordersByStatus[o.Status]; x != nil {
			x.remove(k)
		}
		o.Status = status
		indexIn(m.ordersByStatus, status, k)
	}
}

func (o *listOrder) quote(q domain.Quote) {
	o.GB, o.CoTermination, o.TotalCents = q.GB, q.CoTermination, q.TotalCents
}

func (m *ListsModel) sub(stream string) *listSub {
	id, ok := streamID(stream)
	if !ok {
		return nil
	}
	return m.subs[id]
}

func (m *ListsModel) closeSlot(stream string, order uuid.UUID) {
	if s := m.sub(stream); s != nil && s.OpenOrderID != nil && *s.OpenOrderID == order {
		s.OpenOrderID = nil
	}
}

func (m *ListsModel) indexSub(id uuid.UUID, s *listSub) {
	k := listKey{seq: s.Seq, id: id}
	m.allSubs.insert(k)
	indexIn(m.subsByOwner, s.OwnerID, k)
}

func (m *ListsModel) indexOrder(id uuid.UUID, o *listOrder) {
	k := listKey{seq: o.Seq, id: id}
	m.allOrders.insert(k)
	indexIn(m.ordersByOwner, o.OwnerID, k)
	indexIn(m.ordersBySub, o.SubscriptionID, k)
	indexIn(m.ordersByStatus, o.Status, k)
}

func indexIn[K comparable](idx map[K]*keyIndex, key K, k listKey) {
	x := idx[key]
	if x == nil {
		x = &keyIndex{}
		idx[key] = x
	}
	x.insert(k)
}

type listsState struct {
	Subscriptions map[uuid.UUID]*listSub   `json:"subscriptions"`
	Orders        map[uuid.UUID]*listOrder `json:"orders"`
}

// MarshalState encodes the summaries; encoding/json sorts map keys, which makes it canonical.
func (m *ListsModel) MarshalState() ([]byte, error) {
	return json.Marshal(listsState{m.subs, m.orders})
}

func (m *ListsModel) UnmarshalState(b []byte) error {
	var st listsState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	*m = *NewListsModel()
	for id, s := range st.Subscriptions {
		m.subs[id] = s
		m.indexSub(id, s)
		m.created = max(m.created, s.Seq)
	}
	for id, o := range st.Orders {
		m.orders[id] = o
		m.indexOrder(id, o)
		m.created = max(m.created, o.Seq)
	}
	return nil
}

// SubscriptionSummary is one line of the subscriptions list.
type SubscriptionSummary struct {
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	SubscriptionLine
}

// OrderSummary is one line of the orders list. Amounts are in cents.
type OrderSummary struct {
	OrderID uuid.UUID `json:"orderId"`
	OrderLine
}

// SubscriptionsQuery selects a page of subscriptions, in the order they were opened.
type SubscriptionsQuery struct {
	OwnerID string // "" for every owner
	Cursor  string // a previous page's NextCursor
	Limit   int    // default 100, at most 1000
}

// OrdersQuery selects a page of orders, in the order they were requested. Empty fields
// select everything.
type OrdersQuery struct {
	OwnerID        string
	SubscriptionID uuid.UUID
	Status         domain.OrderStatus
	Cursor         string
	Limit          int
}

// SubscriptionsPage is one page of subscriptions; NextCursor is "" on the last page.
type SubscriptionsPage struct {
	Subscriptions []SubscriptionSummary `json:"subscriptions"`
	NextCursor    string                `json:"nextCursor"`
}

// OrdersPage is one page of orders; NextCursor is "" on the last page.
type OrdersPage struct {
	Orders     []OrderSummary `json:"orders"`
	NextCursor string         `json:"nextCursor"`
}

// Subscriptions returns the page q selects.
func (m *ListsModel) Subscriptions(q SubscriptionsQuery) (SubscriptionsPage, error) {
	page := SubscriptionsPage{Subscriptions: []SubscriptionSummary{}}
	x := &m.allSubs
	if q.OwnerID != "" {
		if x = m.subsByOwner[q.OwnerID]; x == nil {
			return page, nil
		}
	}
	next, err := x.walk(q.Cursor, q.Limit, func(k listKey) bool {
		s := m.subs[k.id]
		page.Subscriptions = append(page.Subscriptions, SubscriptionSummary{SubscriptionID: k.id, SubscriptionLine: s.SubscriptionLine})
		return true
	})
	page.NextCursor = next
	return page, err
}

// Orders returns the page q selects. It walks the narrowest index that q names and
// filters by the rest.
func (m *ListsModel) Orders(q OrdersQuery) (OrdersPage, error) {
	page := OrdersPage{Orders: []OrderSummary{}}
	var x *keyIndex
	switch {
	case q.SubscriptionID != uuid.Nil:
		x = m.ordersBySub[q.SubscriptionID]
	case q.OwnerID != "":
		x = m.ordersByOwner[q.OwnerID]
	case q.Status != "":
		x = m.ordersByStatus[q.Status]
	default:
		x = &m.allOrders
	}
	if x == nil {
		_, err := decodeListCursor(q.Cursor)
		return page, err
	}
	next, err := x.walk(q.Cursor, q.Limit, func(k listKey) bool {
		o := m.orders[k.id]
		if (q.OwnerID != "" && o.OwnerID != q.OwnerID) || (q.Status != "" && o.Status != q.Status) ||
			(q.SubscriptionID != uuid.Nil && o.SubscriptionID != q.SubscriptionID) {
			return false
		}
		page.Orders = append(page.Orders, OrderSummary{OrderID: k.id, OrderLine: o.OrderLine})
		return true
	})
	page.NextCursor = next
	return page, err
}

// All returns every subscription and order, for exports.
func (m *ListsModel) All() ListsExport {
	x := ListsExport{Subscriptions: []SubscriptionSummary{}, Orders: []OrderSummary{}}
	for cursor := ""; ; {
		p, _ := m.Subscriptions(SubscriptionsQuery{Cursor: cursor, Limit: MaxPageLimit})
		x.Subscriptions = append(x.Subscriptions, p.Subscriptions...)
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	for cursor := ""; ; {
		p, _ := m.Orders(OrdersQuery{Cursor: cursor, Limit: MaxPageLimit})
		x.Orders = append(x.Orders, p.Orders...)
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	return x
}

// ListsExport is the JSON export of the lists model.
type ListsExport struct {
	Subscriptions []SubscriptionSummary `json:"subscriptions"`
	Orders        []OrderSummary        `json:"orders"`
}

// listKey orders entries by the log position that created them, then id.
type listKey struct {
	seq uint64
	id  uuid.UUID
}

func (k listKey) compare(o listKey) int {
	switch {
	case k.seq < o.seq:
		return -1
	case k.seq > o.seq:
		return 1
	}
	return compareIDs(k.id, o.id)
}

// keyIndex is a sorted slice of keys. Entries are created in log order, so an insert is
// nearly always an append.
type keyIndex struct{ keys []listKey }

func (x *keyIndex) insert(k listKey) {
	if n := len(x.keys); n == 0 || x.keys[n-1].compare(k) < 0 {
		x.keys = append(x.keys, k)
		return
	}
	i, found := slices.BinarySearchFunc(x.keys, k, listKey.compare)
	if !found {
		x.keys = slices.Insert(x.keys, i, k)
	}
}

func (x *keyIndex) remove(k listKey) {
	if i, found := slices.BinarySearchFunc(x.keys, k, listKey.compare); found {
		x.keys = slices.Delete(x.keys, i, i+1)
	}
}

// walk hands keep the keys after cursor until limit of them were kept; it answers the
// cursor of the next page ("" when the index ends first).
func (x *keyIndex) walk(cursor string, limit int, keep func(listKey) bool) (string, error) {
	limit = pageLimit(limit)
	start := 0
	if cursor != "" {
		k, err := decodeListCursor(cursor)
		if err != nil {
			return "", err
		}
		start = after(x.keys, k, listKey.compare)
	}
	kept, last := 0, listKey{}
	for _, k := range x.keys[start:] {
		if kept == limit {
			return encodeListCursor(last), nil
		}
		if keep(k) {
			kept, last = kept+1, k
		}
	}
	return "", nil
}

func encodeListCursor(k listKey) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], k.seq)
	copy(b[8:], k.id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeListCursor(s string) (listKey, error) {
	if s == "" {
		return listKey{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return listKey{}, fmt.Errorf("%w: %q", ErrBadCursor, s)
	}
	var k listKey
	k.seq = binary.BigEndian.Uint64(b[:8])
	copy(k.id[:], b[8:])
	return k, nil
}

// PageExpiries cuts a page out of a list sorted as ExpiryModel.Within sorts it: the rows
// after cursor (a previous page's next cursor, "" for the first), at most limit of them
// (default 100, at most 1000), and the cursor of the page after ("" on the last page).
func PageExpiries(rows []ExpiryView, cursor string, limit int) ([]ExpiryView, string, error) {
	limit = pageLimit(limit)
	start := 0
	if cursor != "" {
		k, err := decodeExpiryCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		start = after(rows, k, compareExpiry)
	}
	rows = rows[start:]
	if len(rows) <= limit {
		return rows, "", nil
	}
	return rows[:limit], encodeExpiryCursor(rows[limit-1]), nil
}

// An expiry cursor names the last row's sort key: date, subscription, kind and order.
func encodeExpiryCursor(v ExpiryView) string {
	order := ""
	if v.OrderID != nil {
		order = v.OrderID.String()
	}
	s := strings.Join([]string{v.ExpiresOn.String(), v.SubscriptionID.String(), v.Kind, order}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeExpiryCursor(s string) (ExpiryView, error) {
	bad := fmt.Errorf("%w: %q", ErrBadCursor, s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ExpiryView{}, bad
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 4 {
		return ExpiryView{}, bad
	}
	var v ExpiryView
	if v.ExpiresOn, err = domain.ParseDate(parts[0]); err != nil {
		return ExpiryView{}, bad
	}
	if v.SubscriptionID, err = uuid.Parse(parts[1]); err != nil {
		return ExpiryView{}, bad
	}
	v.Kind = parts[2]
	if parts[3] != "" {
		id, err := uuid.Parse(parts[3])
		if err != nil {
			return ExpiryView{}, bad
		}
		v.OrderID = &id
	}
	return v, nil
}

func (OrderSummary) CSVHeader() []string {
	return []string{"order_id", "subscription_id", "owner_id", "channel", "status", "gb", "co_termination",
		"total_eur", "total_cents", "paid_eur", "paid_cents", "payment_method", "requested_at", "confirmed_at"}
}

func (v OrderSummary) CSVRecord() []string {
	return []string{v.OrderID.String(), v.SubscriptionID.String(), text(v.OwnerID), text(v.Channel),
		string(v.Status), itoa(v.GB), fmt.Sprint(v.CoTermination), Euros(v.TotalCents), i64(v.TotalCents),
		Euros(v.PaidCents), i64(v.PaidCents), text(v.PaymentMethod), stamp(v.RequestedAt), stamp(v.ConfirmedAt)}
}

func (SubscriptionSummary) CSVHeader() []string {
	return []string{"subscription_id", "owner_id", "holder_name", "holder_email", "language", "base_gb",
		"opened_on", "open_order_id"}
}

func (v SubscriptionSummary) CSVRecord() []string {
	open := ""
	if v.OpenOrderID != nil {
		open = v.OpenOrderID.String()
	}
	return []string{v.SubscriptionID.String(), text(v.OwnerID), text(v.Holder.Name), text(v.Holder.Email),
		text(v.Language), itoa(v.BaseGB), v.OpenedOn.String(), open}
}

// Subscriptions is a page of subscriptions, in the order they were opened.
func (r *Runner) Subscriptions(q SubscriptionsQuery) (p SubscriptionsPage, err error) {
	r.read(ListsName, func(m Model) { p, err = m.(*ListsModel).Subscriptions(q) })
	return p, err
}

// Orders is a page of orders, in the order they were requested.
func (r *Runner) Orders(q OrdersQuery) (p OrdersPage, err error) {
	r.read(ListsName, func(m Model) { p, err = m.(*ListsModel).Orders(q) })
	return p, err
}
