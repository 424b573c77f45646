package domain

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Subscription is the customer's e-invoicing service as its events leave it.
type Subscription struct {
	ID        uuid.UUID
	Opened    bool
	OwnerID   string
	Holder    Holder
	Language  string
	Services  []Service
	BaseGB    int
	OpenedOn  Date
	Space     []SpaceBlock
	UsedBytes int64
	// UsageReportedAt is when UsedBytes was reported (zero: never).
	UsageReportedAt time.Time
	// OpenOrder is the order in progress, uuid.Nil when none; ReservedAt when it began.
	OpenOrder  uuid.UUID
	ReservedAt time.Time
	// Applied holds the orders whose purchase is applied, so that none is applied twice.
	Applied map[uuid.UUID]bool
}

// SpaceBlock is purchased space with its validity.
type SpaceBlock struct {
	OrderID    uuid.UUID `json:"orderId"`
	GB         int       `json:"gb"`
	ValidFrom  Date      `json:"validFrom"`
	ValidUntil Date      `json:"validUntil"`
}

// PurchasedGB is the purchased space valid on day.
func (s Subscription) PurchasedGB(day Date) int {
	gb := 0
	for _, b := range s.Space {
		if !day.Before(b.ValidFrom) && !day.After(b.ValidUntil) {
			gb += b.GB
		}
	}
	return gb
}

// TotalPurchasedGB is all space ever purchased: the figure that never goes down.
func (s Subscription) TotalPurchasedGB() int {
	gb := 0
	for _, b := range s.Space {
		gb += b.GB
	}
	return gb
}

// Service returns the subscription's service of that kind.
func (s Subscription) Service(kind string) (Service, bool) {
	for _, sv := range s.Services {
		if sv.Kind == kind {
			return sv, true
		}
	}
	return Service{}, false
}

// Closed reports whether the base service had expired on day: no space can be bought then.
func (s Subscription) Closed(day Date) bool {
	base, ok := s.Service(KindBase)
	return !ok || base.ExpiresOn.Before(day)
}

// Subscription commands.

// OpenSubscription is issued by an operator or an import.
type OpenSubscription struct {
	SubscriptionID uuid.UUID
	OwnerID        string
	Holder         Holder
	Language       string
	Services       []Service
}

// ReserveOrderSlot claims the subscription's single order-in-progress slot for an order.
type ReserveOrderSlot struct{ OrderID uuid.UUID }

// ReleaseOrderSlot frees the slot when its order ends without a purchase.
type ReleaseOrderSlot struct {
	OrderID uuid.UUID
	Reason  string
}

// ApplyPurchase grants a paid order's quote; issued once per paid order, idempotent.
type ApplyPurchase struct {
	OrderID uuid.UUID
	Quote   Quote
	PaidAt  time.Time
}

// ReportUsage records how many bytes the documents take.
type ReportUsage struct{ UsedBytes int64 }

// SubscriptionCommand is one of the commands above.
type SubscriptionCommand interface {
	Command
	isSubscriptionCommand()
}

func (OpenSubscription) isSubscriptionCommand() {}
func (ReserveOrderSlot) isSubscriptionCommand() {}
func (ReleaseOrderSlot) isSubscriptionCommand() {}
func (ApplyPurchase) isSubscriptionCommand()    {}
func (ReportUsage) isSubscriptionCommand()      {}

func (OpenSubscription) CommandName() string { return "OpenSubscription" }
func (ReserveOrderSlot) CommandName() string { return "ReserveOrderSlot" }
func (ReleaseOrderSlot) CommandName() string { return "ReleaseOrderSlot" }
func (ApplyPurchase) CommandName() string    { return "ApplyPurchase" }
func (ReportUsage) CommandName() string      { return "ReportUsage" }

// Limits on what a person may type, so a hostile or broken client cannot bloat the log.
const (
	maxNameLen  = 200
	maxEmailLen = 254
	maxIDLen    = 128
)

// DecideSubscription answers a command with the events it causes, or a refusal.
// An empty answer with no error means the command had already taken effect.
func DecideSubscription(cat *Catalogue, s Subscription, cmd SubscriptionCommand, now time.Time) ([]Event, error) {
	if _, opening := cmd.(OpenSubscription); !opening && !s.Opened {
		return nil, ErrUnknownSubscription
	}
	switch c := cmd.(type) {
	case OpenSubscription:
		return openSubscription(cat, s, c, now)
	case ReserveOrderSlot:
		switch {
		case s.OpenOrder == c.OrderID:
			return nil, nil
		case s.OpenOrder != uuid.Nil:
			return nil, ErrOrderInProgress
		case s.Closed(DateOf(now)):
			return nil, ErrSubscriptionClosed
		}
		return []Event{OrderSlotReserved{OrderID: c.OrderID, ReservedAt: now}}, nil
	case ReleaseOrderSlot:
		if s.OpenOrder != c.OrderID || c.OrderID == uuid.Nil {
			return nil, nil
		}
		return []Event{OrderSlotReleased{OrderID: c.OrderID, Reason: clip(c.Reason, maxNameLen)}}, nil
	case ApplyPurchase:
		return applyPurchase(s, c)
	case ReportUsage:
		if c.UsedBytes < 0 || c.UsedBytes > MaxUsedBytes {
			return nil, fieldErr("usedBytes", ErrInvalidUsage, "%d bytes, allowed 0..%d", c.UsedBytes, MaxUsedBytes)
		}
		return []Event{UsageReported{UsedBytes: c.UsedBytes, ReportedAt: now}}, nil
	}
	return nil, fmt.Errorf("domain: unknown subscription command %T", cmd)
}

func openSubscription(cat *Catalogue, s Subscription, c OpenSubscription, now time.Time) ([]Event, error) {
	if s.Opened {
		return nil, ErrSubscriptionExists
	}
	if err := validateOwner(c.OwnerID); err != nil {
		return nil, err
	}
	if err := validateHolder(c.Holder); err != nil {
		return nil, err
	}
	if !slices.Contains(Languages, c.Language) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidLanguage, c.Language)
	}
	if err := validateServices(cat, c.Services); err != nil {
		return nil, err
	}
	return []Event{SubscriptionOpened{
		SubscriptionID: c.SubscriptionID,
		OwnerID:        c.OwnerID,
		Holder:         Holder{Name: strings.TrimSpace(c.Holder.Name), Email: strings.TrimSpace(c.Holder.Email)},
		Language:       c.Language,
		Services:       slices.Clone(c.Services),
		BaseGB:         cat.BaseGB,
		OpenedOn:       DateOf(now),
	}}, nil
}

func validateOwner(owner string) error {
	if strings.TrimSpace(owner) == "" || len(owner) > maxIDLen || !utf8.ValidString(owner) || strings.ContainsFunc(owner, isControl) {
		return ErrInvalidOwner
	}
	return nil
}

func validateHolder(h Holder) error {
	name := strings.TrimSpace(h.Name)
	if name == "" || utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return fmt.Errorf("%w: the name must be 1 to %d printable characters", ErrInvalidHolder, maxNameLen)
	}
	email := strings.TrimSpace(h.Email)
	addr, err := mail.ParseAddress(email)
	// Only a bare address will do: a display name or comment in it could smuggle headers.
	if err != nil || addr.Address != email || len(email) > maxEmailLen {
		return fmt.Errorf("%w: %q is not a plain email address", ErrInvalidHolder, email)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func validateServices(cat *Catalogue, services []Service) error {
	seen := map[string]bool{}
	for i, sv := range services {
		if _, ok := cat.Services[sv.Kind]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownServiceKind, sv.Kind)
		}
		if sv.Quantity > cat.MaxQuantity() {
			return fieldErr(fmt.Sprintf("services[%d].quantity", i), ErrInvalidServices, "%s: %d, at most %d", sv.Kind, sv.Quantity, cat.MaxQuantity())
		}
		if seen[sv.Kind] || sv.Quantity < 1 || sv.ExpiresOn.IsZero() || (sv.Kind == KindBase && sv.Quantity != 1) {
			return fmt.Errorf("%w: %s", ErrInvalidServices, sv.Kind)
		}
		seen[sv.Kind] = true
	}
	if !seen[KindBase] {
		return fmt.Errorf("%w: the base service is missing", ErrInvalidServices)
	}
	return nil
}

// applyPurchase grants a paid quote. A year is a year: the space runs its months from the
// day the payment completed, and co-termination aligns every extended service, and every
// earlier block of space the quote charged, to that same day. What was charged stays the
// quote's (the days between confirmation and payment, bounded by the payment term, are not
// charged again). Extensions only lengthen: what already runs past the new expiry keeps its
// date.
func applyPurchase(s Subscription, c ApplyPurchase) ([]Event, error) {
	if s.Applied[c.OrderID] {
		return nil, nil
	}
	from := DateOf(c.PaidAt)
	until := c.Quote.GrantedExpiry(from)
	events := []Event{SpaceAdded{OrderID: c.OrderID, GB: c.Quote.GB, ValidFrom: from, ValidUntil: until}}
	var ext []ServiceExtension
	for _, l := range c.Quote.ExtendedServices() {
		current, ok := s.Service(l.Kind)
		if !ok || !current.ExpiresOn.Before(until) {
			continue
		}
		ext = append(ext, ServiceExtension{
			Kind: l.Kind, Quantity: l.Quantity, OldExpiry: current.ExpiresOn, NewExpiry: until, Months: l.Months,
		})
	}
	if len(ext) > 0 {
		events = append(events, ServicesExtended{OrderID: c.OrderID, Services: ext})
	}
	var blocks []BlockExtension
	for _, l := range c.Quote.EarlierSpace() {
		for _, b := range s.Space {
			// The blocks the line priced: those ending on its old expiry.
			if b.ValidUntil == l.OldExpiry && b.ValidUntil.Before(until) {
				blocks = append(blocks, BlockExtension{OrderID: b.OrderID, GB: b.GB, OldUntil: b.ValidUntil, NewUntil: until, Months: l.Months})
			}
		}
	}
	if len(blocks) > 0 {
		events = append(events, SpaceExtended{OrderID: c.OrderID, Blocks: blocks})
	}
	return events, nil
}

// EvolveSubscription folds one event into the state. It never changes the state it is
// given: the command path caches states and shares them between requests.
func EvolveSubscription(s Subscription, ev Event) Subscription {
	switch e := ev.(type) {
	case SubscriptionOpened:
		s = Subscription{
			ID: e.SubscriptionID, Opened: true, OwnerID: e.OwnerID, Holder: e.Holder, Language: e.Language,
			Services: slices.Clone(e.Services), BaseGB: e.BaseGB, OpenedOn: e.OpenedOn,
		}
	case OrderSlotReserved:
		s.OpenOrder, s.ReservedAt = e.OrderID, e.ReservedAt
	case OrderSlotReleased:
		if s.OpenOrder == e.OrderID {
			s.OpenOrder, s.ReservedAt = uuid.Nil, time.Time{}
		}
	case SpaceAdded:
		s.Space = append(slices.Clip(s.Space), SpaceBlock(e))
		applied := make(map[uuid.UUID]bool, len(s.Applied)+1)
		for id := range s.Applied {
			applied[id] = true
		}
		applied[e.OrderID] = true
		s.Applied = applied
		if s.OpenOrder == e.OrderID {
			s.OpenOrder, s.ReservedAt = uuid.Nil, time.Time{}
		}
	case ServicesExtended:
		s.Services = e.Extend(s.Services)
	case SpaceExtended:
		s.Space = e.Extend(s.Space)
	case UsageReported:
		s.UsedBytes, s.UsageReportedAt = e.UsedBytes, e.ReportedAt
	}
	return s
}

// Extend is services with the extensions of e applied: each service of a kind e names
// expires on its new expiry, unless it already runs longer (an extension only lengthens).
// services itself is left as it was.
func (e ServicesExtended) Extend(services []Service) []Service {
	services = slices.Clone(services)
	for _, x := range e.Services {
		for i := range services {
			if services[i].Kind == x.Kind && services[i].ExpiresOn.Before(x.NewExpiry) {
				services[i].ExpiresOn = x.NewExpiry
			}
		}
	}
	return services
}

// Extend is blocks with the extensions of e applied: each block bought by an order e names
// is valid until its new end, unless it already runs longer (an extension only lengthens).
// blocks itself is left as it was.
func (e SpaceExtended) Extend(blocks []SpaceBlock) []SpaceBlock {
	blocks = slices.Clone(blocks)
	for _, x := range e.Blocks {
		for i := range blocks {
			if blocks[i].OrderID == x.OrderID && blocks[i].ValidUntil.Before(x.NewUntil) {
				blocks[i].ValidUntil = x.NewUntil
			}
		}
	}
	return blocks
}
