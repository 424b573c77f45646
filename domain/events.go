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
// A field added with omitempty, whose absence means exactly what the older payloads meant
// (SpaceIncreaseRequested.Space, OrderConfirmed.ExpectedRegistrationOn, OrderPaid.ExcessCents),
// keeps the version: every older payload still reads as it did.
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
		// The calendar rules (docs/RULES.md).
		{"QuoteRepriced", 1, QuoteRepriced{}},
		{"OrderAbandoned", 1, OrderAbandoned{}},
		{"OrderOverdue", 1, OrderOverdue{}},
		{"CreditDue", 1, CreditDue{}},
		{"SpaceExtended", 1, SpaceExtended{}},
		{"EmailSent", 1, EmailSent{}},
		{"EmailGivenUp", 1, EmailGivenUp{}},
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
	// Space is the subscription's purchased space when the cart opened: co-termination
	// aligns the blocks still valid (absent in carts opened before that rule: none).
	Space []SpaceBlock `json:"space,omitempty"`
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
	// ExpectedRegistrationDays is how long the chosen method takes to be registered, in
	// working days.
	ExpectedRegistrationDays int `json:"expectedRegistrationDays"`
	// ExpectedRegistrationOn is the working day by which the payment is expected in the
	// books (absent in older events: ExpectedRegistration computes it the same way).
	ExpectedRegistrationOn Date `json:"expectedRegistrationOn,omitzero"`
}

// ExpectedRegistration is the day the payment is expected to be registered: the confirmation
// day plus the method's working days.
func (e OrderConfirmed) ExpectedRegistration() Date {
	if !e.ExpectedRegistrationOn.IsZero() {
		return e.ExpectedRegistrationOn
	}
	return DateOf(e.ConfirmedAt).AddWorkingDays(e.ExpectedRegistrationDays)
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
	// ExcessCents is what the payment brought beyond the total: a credit due (CreditDue).
	ExcessCents int64 `json:"excessCents,omitempty"`
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

// QuoteRepriced: a command on a cart or order form came on a later Rome day than its quote,
// so the order was priced again from that day. It comes before the command's own events.
type QuoteRepriced struct {
	PreviousOrderDate  Date      `json:"previousOrderDate"`
	PreviousTotalCents int64     `json:"previousTotalCents"`
	Quote              Quote     `json:"quote"`
	RepricedAt         time.Time `json:"repricedAt"`
}

// OrderAbandoned: the cart or order form stayed untouched for the catalogue's days; the
// sweeper ended it, and its subscription's order slot is free.
type OrderAbandoned struct {
	LastActiveOn Date      `json:"lastActiveOn"`
	AbandonedAt  time.Time `json:"abandonedAt"`
}

// OrderOverdue: a partly paid order passed its last day to pay. It is not expired (money was
// received): finance sees its balance, and an operator may cancel it.
type OrderOverdue struct {
	PayBy     Date      `json:"payBy"`
	PaidCents int64     `json:"paidCents"`
	DueCents  int64     `json:"dueCents"`
	OverdueAt time.Time `json:"overdueAt"`
}

// Reasons for a credit due.
const (
	CreditExcess                = "excess"                  // more than the total
	CreditOrderNotConfirmed     = "order-not-confirmed"     // money for a cart
	CreditOrderPaid             = "order-already-paid"      // the order was paid already
	CreditOrderCancelled        = "order-cancelled"         // money for a cancelled order
	CreditOrderExpired          = "order-expired"           // money for an expired order
	CreditOrderAbandoned        = "order-abandoned"         // money for an abandoned cart
	CreditOrderOverdue          = "order-overdue"           // money after the order became overdue
	CreditSubscriptionNotActive = "subscription-not-active" // the subscription can no longer buy
	CreditCancelledPartlyPaid   = "cancelled-partly-paid"   // an operator cancelled a partly paid order
)

// CreditDue: money received for an order that it will not pay for, owed back to the
// customer. Money that arrives is never refused: it is recorded here, and grants nothing.
type CreditDue struct {
	OrderID        uuid.UUID `json:"orderId"`
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	OwnerID        string    `json:"ownerId"`
	Holder         Holder    `json:"holder"`
	AmountCents    int64     `json:"amountCents"`
	Reason         string    `json:"reason"`
	// Reference is the payment's transaction reference ("" for a cancellation's credit).
	Reference  string    `json:"reference,omitempty"`
	RecordedAt time.Time `json:"recordedAt"`
}

// SpaceExtended: co-termination aligned earlier space still valid to the new expiry.
type SpaceExtended struct {
	OrderID uuid.UUID        `json:"orderId"`
	Blocks  []BlockExtension `json:"blocks"`
}

// BlockExtension is one earlier block's new validity and the months charged for it.
type BlockExtension struct {
	OrderID  uuid.UUID `json:"orderId"` // the order that bought the block
	GB       int       `json:"gb"`
	OldUntil Date      `json:"oldUntil"`
	NewUntil Date      `json:"newUntil"`
	Months   int       `json:"months"`
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
func (QuoteRepriced) isEvent()          {}
func (OrderAbandoned) isEvent()         {}
func (OrderOverdue) isEvent()           {}
func (CreditDue) isEvent()              {}
func (SpaceExtended) isEvent()          {}
