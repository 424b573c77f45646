package domain

import (
	"time"

	"github.com/google/uuid"
)

// Event is a fact the deciders produce. Its name in the log is the stable one in EventTypes,
// never the Go type's name, so renaming a struct cannot break replay.
type Event interface{ isEvent() }

// EventType ties a stable name and schema version to the Go type that holds that version.
type EventType struct {
	Name    string
	Version int
	Zero    Event
}

// EventTypes is the contract of the log: every event the domain writes, by stable name and
// current schema version. Adding a version means a new entry here and an upcaster from the
// older one (see the eventstore codec); old events are upcast on read, never rewritten.
func EventTypes() []EventType {
	return []EventType{
		{"SubscriptionOpened", 1, SubscriptionOpened{}},
		{"OrderSlotReserved", 1, OrderSlotReserved{}},
		{"OrderSlotReleased", 1, OrderSlotReleased{}},
		{"SpaceAdded", 1, SpaceAdded{}},
		{"ServicesExtended", 1, ServicesExtended{}},
		{"UsageReported", 1, UsageReported{}},
		{"SpaceIncreaseRequested", 1, SpaceIncreaseRequested{}},
		{"CoTerminationToggled", 1, CoTerminationToggled{}},
		{"CheckoutStarted", 1, CheckoutStarted{}},
		{"PaymentMethodSelected", 1, PaymentMethodSelected{}},
		{"OrderModified", 1, OrderModified{}},
		{"OrderConfirmed", 1, OrderConfirmed{}},
		{"PaymentRegistered", 1, PaymentRegistered{}},
		{"OrderPaid", 1, OrderPaid{}},
		{"OrderCancelled", 1, OrderCancelled{}},
		{"OrderExpired", 1, OrderExpired{}},
		{"EmailSent", 1, EmailSent{}},
	}
}

// Holder is who the subscription belongs to and where the emails go.
type Holder struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Subscription events.

// SubscriptionOpened: a customer's subscription exists, with its base space and services.
type SubscriptionOpened struct {
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	Holder         Holder    `json:"holder"`
	Language       string    `json:"language"`
	Services       []Service `json:"services"`
	BaseGB         int       `json:"baseGB"`
	OpenedOn       Date      `json:"openedOn"`
}

// OrderSlotReserved: an order is in progress for the subscription, and no other may start.
type OrderSlotReserved struct {
	OrderID    uuid.UUID `json:"orderId"`
	ReservedAt time.Time `json:"reservedAt"`
}

// OrderSlotReleased: the order in progress ended without a purchase (cancelled, expired, or
// never created), and a new one may start.
type OrderSlotReleased struct {
	OrderID uuid.UUID `json:"orderId"`
	Reason  string    `json:"reason"`
}

// SpaceAdded: a paid order's space is granted. It also ends the order in progress.
type SpaceAdded struct {
	OrderID    uuid.UUID `json:"orderId"`
	GB         int       `json:"gb"`
	ValidFrom  Date      `json:"validFrom"`
	ValidUntil Date      `json:"validUntil"`
}

// ServicesExtended: with co-termination, the services run to the space's new expiry.
type ServicesExtended struct {
	OrderID  uuid.UUID          `json:"orderId"`
	Services []ServiceExtension `json:"services"`
}

// ServiceExtension is one service's new expiry and the months that were charged for it.
type ServiceExtension struct {
	Kind      string `json:"kind"`
	Quantity  int    `json:"quantity"`
	OldExpiry Date   `json:"oldExpiry"`
	NewExpiry Date   `json:"newExpiry"`
	Months    int    `json:"months"`
}

// UsageReported: how much of the space the documents take.
type UsageReported struct {
	UsedBytes  int64     `json:"usedBytes"`
	ReportedAt time.Time `json:"reportedAt"`
}

// Order events.

// SpaceIncreaseRequested: the cart, with its first quote (co-termination on). It keeps a
// copy of what the quote was computed from, so that later quotes need no other stream.
type SpaceIncreaseRequested struct {
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	Holder         Holder    `json:"holder"`
	Language       string    `json:"language"`
	Services       []Service `json:"services"`
	Channel        string    `json:"channel"`
	Quote          Quote     `json:"quote"`
	RequestedAt    time.Time `json:"requestedAt"`
}

// CoTerminationToggled: the customer switched co-termination; the quote is recomputed.
type CoTerminationToggled struct {
	Enabled bool  `json:"enabled"`
	Quote   Quote `json:"quote"`
}

// CheckoutStarted: the customer moved on to the order form.
type CheckoutStarted struct{}

// PaymentMethodSelected: the customer chose how to pay.
type PaymentMethodSelected struct {
	Method string `json:"method"`
}

// OrderModified: back to the cart with a new quantity or co-termination; the order form
// starts again, so the payment method must be chosen again.
type OrderModified struct {
	GB            int   `json:"gb"`
	CoTermination bool  `json:"coTermination"`
	Quote         Quote `json:"quote"`
}

// Acceptances are the legal consents given on confirmation.
type Acceptances struct {
	GeneralConditions bool      `json:"generalConditions"`
	UnfairTerms       bool      `json:"unfairTerms"`
	Privacy           bool      `json:"privacy"`
	TermsVersion      string    `json:"termsVersion"`
	AcceptedAt        time.Time `json:"acceptedAt"`
}

// Recipient is where the payment instructions go, as it was when the order was confirmed.
type Recipient struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Language string `json:"language"`
}

// OrderConfirmed: the binding order. Its quote is what is charged and what is granted.
type OrderConfirmed struct {
	OrderID        uuid.UUID   `json:"orderId"`
	SubscriptionID uuid.UUID   `json:"subscriptionId"`
	OwnerID        string      `json:"ownerId"`
	Quote          Quote       `json:"quote"`
	PaymentMethod  string      `json:"paymentMethod"`
	Recipient      Recipient   `json:"recipient"`
	Acceptances    Acceptances `json:"acceptances"`
	ConfirmedAt    time.Time   `json:"confirmedAt"`
	// PayBy is the last day to pay before the order expires.
	PayBy Date `json:"payBy"`
	// ExpectedRegistrationDays is how long the chosen method takes to be registered.
	ExpectedRegistrationDays int `json:"expectedRegistrationDays"`
}

// PaymentRegistered: money arrived for the order. PaidCents is the total so far.
type PaymentRegistered struct {
	AmountCents  int64     `json:"amountCents"`
	Method       string    `json:"method"`
	Reference    string    `json:"reference"`
	PaidCents    int64     `json:"paidCents"`
	RegisteredAt time.Time `json:"registeredAt"`
}

// OrderPaid: the total is covered. It carries what must be granted, so the process manager
// that applies it to the subscription needs nothing else.
type OrderPaid struct {
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	Quote          Quote     `json:"quote"`
	Recipient      Recipient `json:"recipient"`
	PaidCents      int64     `json:"paidCents"`
	PaidAt         time.Time `json:"paidAt"`
}

// OrderCancelled: the order will not go on.
type OrderCancelled struct {
	Reason      string    `json:"reason"`
	CancelledAt time.Time `json:"cancelledAt"`
}

// OrderExpired: the order stayed unpaid past its payment term.
type OrderExpired struct {
	ExpiredAt time.Time `json:"expiredAt"`
}

func (SubscriptionOpened) isEvent()     {}
func (OrderSlotReserved) isEvent()      {}
func (OrderSlotReleased) isEvent()      {}
func (SpaceAdded) isEvent()             {}
func (ServicesExtended) isEvent()       {}
func (UsageReported) isEvent()          {}
func (SpaceIncreaseRequested) isEvent() {}
func (CoTerminationToggled) isEvent()   {}
func (CheckoutStarted) isEvent()        {}
func (PaymentMethodSelected) isEvent()  {}
func (OrderModified) isEvent()          {}
func (OrderConfirmed) isEvent()         {}
func (PaymentRegistered) isEvent()      {}
func (OrderPaid) isEvent()              {}
func (OrderCancelled) isEvent()         {}
func (OrderExpired) isEvent()           {}
