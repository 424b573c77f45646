package projections

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// Expiry statuses.
const (
	ExpiryActive   = "active"
	ExpiryExpiring = "expiring" // within ExpiringDays
	ExpiryExpired  = "expired"
)

// ExpiringDays is the window in which a service counts as expiring.
const ExpiringDays = 30

// KindSpace is the kind the expiry view gives a purchased block of space.
const KindSpace = domain.KindSpace

// ExpiryModel holds the expiry of every service of every subscription, and of each block
// of purchased space.
type ExpiryModel struct {
	subs map[uuid.UUID]*expirySub
}

type expirySub struct {
	OwnerID     string              `json:"ownerId"`
	HolderName  string              `json:"holderName"`
	HolderEmail string              `json:"holderEmail"`
	Services    []domain.Service    `json:"services"`
	Space       []domain.SpaceBlock `json:"space,omitempty"`
}

// NewExpiryModel returns an empty expiry model.
func NewExpiryModel() *ExpiryModel { return &ExpiryModel{subs: map[uuid.UUID]*expirySub{}} }

func (*ExpiryModel) Name() string { return ExpiryName }

// Version 2: earlier space aligned by co-termination (SpaceExtended).
func (*ExpiryModel) Version() int { return 2 }

// Apply folds one event.
func (m *ExpiryModel) Apply(env eventstore.Envelope, ev domain.Event) {
	switch e := ev.(type) {
	case domain.SubscriptionOpened:
		m.subs[e.SubscriptionID] = &expirySub{
			OwnerID: e.OwnerID, HolderName: e.Holder.Name, HolderEmail: e.Holder.Email,
			Services: slices.Clone(e.Services),
		}
	case domain.ServicesExtended:
		if s := m.sub(env.Stream); s != nil {
			s.Services = e.Extend(s.Services)
		}
	case domain.SpaceExtended:
		if s := m.sub(env.Stream); s != nil {
			s.Space = e.Extend(s.Space)
		}
	case domain.SpaceAdded:
		s := m.sub(env.Stream)
		if s == nil || slices.ContainsFunc(s.Space, func(b domain.SpaceBlock) bool { return b.OrderID == e.OrderID }) {
			return
		}
		s.Space = append(s.Space, domain.SpaceBlock(e))
	}
}

func (m *ExpiryModel) sub(stream string) *expirySub {
	id, ok := streamID(stream)
	if !ok {
		return nil
	}
	return m.subs[id]
}

func (m *ExpiryModel) MarshalState() ([]byte, error) {
	return json.Marshal(struct {
		Subscriptions map[uuid.UUID]*expirySub `json:"subscriptions"`
	}{m.subs})
}

func (m *ExpiryModel) UnmarshalState(b []byte) error {
	var st struct {
		Subscriptions map[uuid.UUID]*expirySub `json:"subscriptions"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	m.subs = map[uuid.UUID]*expirySub{}
	maps.Copy(m.subs, st.Subscriptions)
	return nil
}

// ExpiryView is the expiry of one service of a subscription (or of one block of space,
// Kind "space", with its OrderID) as of a day.
type ExpiryView struct {
	SubscriptionID uuid.UUID   `json:"subscriptionId"`
	OwnerID        string      `json:"ownerId"`
	HolderName     string      `json:"holderName"`
	HolderEmail    string      `json:"holderEmail"`
	Kind           string      `json:"kind"`
	OrderID        *uuid.UUID  `json:"orderId,omitempty"`
	Quantity       int         `json:"quantity"` // units, or GB for space
	ExpiresOn      domain.Date `json:"expiresOn"`
	// DaysLeft counts from Today to ExpiresOn (negative once expired).
	DaysLeft int         `json:"daysLeft"`
	Status   string      `json:"status"`
	Today    domain.Date `json:"today"`
}

// Subscription returns the expiries of one subscription: its services in the order they
// were opened, then its blocks of space.
func (m *ExpiryModel) Subscription(id uuid.UUID, now time.Time) ([]ExpiryView, bool) {
	s, ok := m.subs[id]
	if !ok {
		return nil, false
	}
	return s.views(id, domain.DateOf(now), nil), true
}

// Owner returns the customer a subscription belongs to.
func (m *ExpiryModel) Owner(id uuid.UUID) (string, bool) {
	s, ok := m.subs[id]
	if !ok {
		return "", false
	}
	return s.OwnerID, true
}

// Within returns, across subscriptions, what expires from today to today+days included,
// soonest first (then by subscription, kind and order).
func (m *ExpiryModel) Within(days int, now time.Time) []ExpiryView {
	today := domain.DateOf(now)
	out := []ExpiryView{}
	for id, s := range m.subs {
		out = s.views(id, today, func(d domain.Date) bool {
			n := today.DaysUntil(d)
			return n >= 0 && n <= days
		}, out...)
	}
	sortExpiries(out)
	return out
}

// All returns every expiry, ordered by subscription id.
func (m *ExpiryModel) All(now time.Time) []ExpiryView {
	today := domain.DateOf(now)
	out := []ExpiryView{}
	for _, id := range sortedIDs(m.subs) {
		out = m.subs[id].views(id, today, nil, out...)
	}
	return out
}

func sortExpiries(v []ExpiryView) { slices.SortFunc(v, compareExpiry) }

// compareExpiry is the order of the expiries list; PageExpiries cuts pages along it.
func compareExpiry(a, b ExpiryView) int {
	if c := a.ExpiresOn.Compare(b.ExpiresOn); c != 0 {
		return c
	}
	if c := compareIDs(a.SubscriptionID, b.SubscriptionID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	var x, y uuid.UUID
	if a.OrderID != nil {
		x = *a.OrderID
	}
	if b.OrderID != nil {
		y = *b.OrderID
	}
	return compareIDs(x, y)
}

func (s *expirySub) views(id uuid.UUID, today domain.Date, keep func(domain.Date) bool, out ...ExpiryView) []ExpiryView {
	if out == nil {
		out = []ExpiryView{}
	}
	add := func(kind string, order *uuid.UUID, qty int, d domain.Date) {
		if keep != nil && !keep(d) {
			return
		}
		left := today.DaysUntil(d)
		status := ExpiryActive
		switch {
		case left < 0:
			status = ExpiryExpired
		case left <= ExpiringDays:
			status = ExpiryExpiring
		}
		out = append(out, ExpiryView{
			SubscriptionID: id, OwnerID: s.OwnerID, HolderName: s.HolderName, HolderEmail: s.HolderEmail,
			Kind: kind, OrderID: order, Quantity: qty, ExpiresOn: d, DaysLeft: left, Status: status, Today: today,
		})
	}
	for _, sv := range s.Services {
		add(sv.Kind, nil, sv.Quantity, sv.ExpiresOn)
	}
	for _, b := range s.Space {
		order := b.OrderID
		add(KindSpace, &order, b.GB, b.ValidUntil)
	}
	return out
}
