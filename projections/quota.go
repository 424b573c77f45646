package projections

import (
	"encoding/json"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// BytesPerGB is how many bytes one GB of quota holds: storage quotas count in binary units.
const BytesPerGB int64 = 1 << 30

// Warning levels of the quota view.
const (
	WarningNone = "none"
	WarningHigh = "warning" // 70 % or more used
	WarningFull = "full"    // 100 % or more used
)

// WarningPercent is the use from which the quota view warns.
const WarningPercent = 70

// QuotaModel is the space of each subscription: base, purchased blocks, GB ordered and
// not yet paid, and the last reported use.
type QuotaModel struct {
	subs map[uuid.UUID]*quotaSub
	// orders are the confirmed, unpaid orders: what they will add to which subscription.
	orders map[uuid.UUID]quotaOrder
}

type quotaSub struct {
	OwnerID         string              `json:"ownerId"`
	HolderName      string              `json:"holderName"`
	BaseGB          int                 `json:"baseGB"`
	OpenedOn        domain.Date         `json:"openedOn"`
	Blocks          []domain.SpaceBlock `json:"blocks,omitempty"`
	PendingGB       int                 `json:"pendingGB,omitempty"`
	UsedBytes       int64               `json:"usedBytes,omitempty"`
	UsageReportedAt time.Time           `json:"usageReportedAt,omitzero"`
}

type quotaOrder struct {
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	GB             int       `json:"gb"`
}

// NewQuotaModel returns an empty quota model.
func NewQuotaModel() *QuotaModel {
	return &QuotaModel{subs: map[uuid.UUID]*quotaSub{}, orders: map[uuid.UUID]quotaOrder{}}
}

func (*QuotaModel) Name() string { return QuotaName }

// Version 2: earlier space aligned by co-termination (SpaceExtended), abandoned carts.
func (*QuotaModel) Version() int { return 2 }

// Apply folds one event.
func (m *QuotaModel) Apply(env eventstore.Envelope, ev domain.Event) {
	switch e := ev.(type) {
	case domain.SubscriptionOpened:
		m.subs[e.SubscriptionID] = &quotaSub{
			OwnerID: e.OwnerID, HolderName: e.Holder.Name, BaseGB: e.BaseGB, OpenedOn: e.OpenedOn,
		}
	case domain.SpaceAdded:
		s := m.sub(env.Stream)
		if s == nil || slices.ContainsFunc(s.Blocks, func(b domain.SpaceBlock) bool { return b.OrderID == e.OrderID }) {
			return
		}
		s.Blocks = append(s.Blocks, domain.SpaceBlock(e))
	case domain.SpaceExtended:
		if s := m.sub(env.Stream); s != nil {
			s.Blocks = e.Extend(s.Blocks)
		}
	case domain.UsageReported:
		if s := m.sub(env.Stream); s != nil {
			s.UsedBytes, s.UsageReportedAt = e.UsedBytes, e.ReportedAt
		}
	case domain.OrderConfirmed:
		if _, dup := m.orders[e.OrderID]; dup {
			return
		}
		m.orders[e.OrderID] = quotaOrder{SubscriptionID: e.SubscriptionID, GB: e.Quote.GB}
		if s := m.subs[e.SubscriptionID]; s != nil {
			s.PendingGB += e.Quote.GB
		}
	case domain.OrderPaid, domain.OrderCancelled, domain.OrderExpired, domain.OrderAbandoned:
		id, ok := streamID(env.Stream)
		if !ok {
			return
		}
		o, ok := m.orders[id]
		if !ok {
			return
		}
		delete(m.orders, id)
		if s := m.subs[o.SubscriptionID]; s != nil {
			s.PendingGB -= o.GB
		}
	}
}

func (m *QuotaModel) sub(stream string) *quotaSub {
	id, ok := streamID(stream)
	if !ok {
		return nil
	}
	return m.subs[id]
}

type quotaState struct {
	Subscriptions map[uuid.UUID]*quotaSub  `json:"subscriptions"`
	Orders        map[uuid.UUID]quotaOrder `json:"orders"`
}

// MarshalState encodes the state; encoding/json sorts map keys, which makes it canonical.
func (m *QuotaModel) MarshalState() ([]byte, error) {
	return json.Marshal(quotaState{m.subs, m.orders})
}

func (m *QuotaModel) UnmarshalState(b []byte) error {
	var st quotaState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	*m = *NewQuotaModel()
	maps.Copy(m.subs, st.Subscriptions)
	maps.Copy(m.orders, st.Orders)
	return nil
}

// QuotaView is a subscription's space as of a day.
type QuotaView struct {
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	// OwnerID is the customer: the HTTP layer checks a customer reads only its own.
	OwnerID    string `json:"ownerId"`
	HolderName string `json:"holderName"`
	// Today is the Rome date the view was computed for.
	Today  domain.Date `json:"today"`
	BaseGB int         `json:"baseGB"`
	// PurchasedGB is the purchased space valid today; Blocks lists those blocks.
	PurchasedGB int          `json:"purchasedGB"`
	Blocks      []QuotaBlock `json:"blocks"`
	TotalGB     int          `json:"totalGB"`
	// PendingGB is ordered (confirmed) but not yet paid.
	PendingGB       int        `json:"pendingGB"`
	UsedBytes       int64      `json:"usedBytes"`
	UsageReportedAt *time.Time `json:"usageReportedAt,omitempty"`
	CapacityBytes   int64      `json:"capacityBytes"`
	// PercentUsed is rounded to two decimals.
	PercentUsed float64 `json:"percentUsed"`
	Warning     string  `json:"warning"`
	// RecommendedGB is indicative: the average use since activation, extrapolated to the
	// expiry of space bought today (a year on, the date co-termination aligns every service
	// to), less the space still valid then, in whole GB.
	RecommendedGB int `json:"recommendedGB"`
}

// QuotaBlock is one purchased block of space and its validity.
type QuotaBlock struct {
	OrderID    uuid.UUID   `json:"orderId"`
	GB         int         `json:"gb"`
	ValidFrom  domain.Date `json:"validFrom"`
	ValidUntil domain.Date `json:"validUntil"`
}

// Quota returns the view of one subscription.
func (m *QuotaModel) Quota(id uuid.UUID, now time.Time) (QuotaView, bool) {
	s, ok := m.subs[id]
	if !ok {
		return QuotaView{}, false
	}
	return s.view(id, domain.DateOf(now)), true
}

// Owner returns the customer a subscription belongs to.
func (m *QuotaModel) Owner(id uuid.UUID) (string, bool) {
	s, ok := m.subs[id]
	if !ok {
		return "", false
	}
	return s.OwnerID, true
}

// All returns every subscription's view, ordered by subscription id.
func (m *QuotaModel) All(now time.Time) []QuotaView {
	today := domain.DateOf(now)
	ids := sortedIDs(m.subs)
	out := make([]QuotaView, 0, len(ids))
	for _, id := range ids {
		out = append(out, m.subs[id].view(id, today))
	}
	return out
}

// Len is the number of subscriptions.
func (m *QuotaModel) Len() int { return len(m.subs) }

func (s *quotaSub) validGB(day domain.Date) int {
	gb := 0
	for _, b := range s.Blocks {
		if !day.Before(b.ValidFrom) && !day.After(b.ValidUntil) {
			gb += b.GB
		}
	}
	return gb
}

func (s *quotaSub) view(id uuid.UUID, today domain.Date) QuotaView {
	v := QuotaView{
		SubscriptionID: id, OwnerID: s.OwnerID, HolderName: s.HolderName, Today: today,
		BaseGB: s.BaseGB, Blocks: []QuotaBlock{}, PendingGB: s.PendingGB, UsedBytes: s.UsedBytes,
		Warning: WarningNone,
	}
	for _, b := range s.Blocks {
		if !today.Before(b.ValidFrom) && !today.After(b.ValidUntil) {
			v.PurchasedGB += b.GB
			v.Blocks = append(v.Blocks, QuotaBlock(b))
		}
	}
	v.TotalGB = v.BaseGB + v.PurchasedGB
	v.CapacityBytes = int64(v.TotalGB) * BytesPerGB
	if !s.UsageReportedAt.IsZero() {
		at := s.UsageReportedAt
		v.UsageReportedAt = &at
	}
	switch {
	case v.CapacityBytes > 0:
		v.PercentUsed = math.Round(float64(s.UsedBytes)*10000/float64(v.CapacityBytes)) / 100
	case s.UsedBytes > 0:
		v.PercentUsed = 100
	}
	// Compared as percentages of float64, not as products of int64: a use recorded before
	// the documented maximum (domain.MaxUsedBytes) existed may be near 2^63.
	switch {
	case s.UsedBytes > 0 && s.UsedBytes >= v.CapacityBytes:
		v.Warning = WarningFull
	case s.UsedBytes > 0 && float64(s.UsedBytes)*100 >= float64(v.CapacityBytes)*WarningPercent:
		v.Warning = WarningHigh
	}
	v.RecommendedGB = s.recommend(today)
	return v
}

// recommend extrapolates the average daily use since activation (measured on the day of
// the last report) to a year from today, and answers the GB missing then.
func (s *quotaSub) recommend(today domain.Date) int {
	if s.UsageReportedAt.IsZero() || s.UsedBytes <= 0 {
		return 0
	}
	reported := domain.DateOf(s.UsageReportedAt)
	days := int64(max(s.OpenedOn.DaysUntil(reported), 1))
	horizon := today.AddMonths(12)
	ahead := int64(max(reported.DaysUntil(horizon), 0))
	// A use recorded before the documented maximum existed may be near 2^63: it counts as
	// the maximum, so that used + growth (under 2^60) cannot wrap.
	used := min(s.UsedBytes, domain.MaxUsedBytes)
	projected := used + used/days*ahead
	capacity := int64(s.BaseGB+s.validGB(horizon)) * BytesPerGB
	if projected <= capacity {
		return 0
	}
	return int((projected - capacity + BytesPerGB - 1) / BytesPerGB)
}

func sortedIDs[V any](m map[uuid.UUID]V) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func compareIDs(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
