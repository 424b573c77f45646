package notifications

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
)

// The message types: facts others act on (the mailer, payments, provisioning, finance).
const (
	TypeSubscriptionOpened = "SubscriptionOpened"
	TypeSpaceAdded         = "SpaceAdded"
	TypeServicesExtended   = "ServicesExtended"
	TypeOrderConfirmed     = "OrderConfirmed"
	TypePaymentRegistered  = "PaymentRegistered"
	TypeOrderPaid          = "OrderPaid"
	TypeOrderCancelled     = "OrderCancelled"
	TypeOrderExpired       = "OrderExpired"
	TypeSpaceExtended      = "SpaceExtended"
	TypeCreditDue          = "CreditDue"
	TypeOrderOverdue       = "OrderOverdue"
	TypeOrderAbandoned     = "OrderAbandoned"
)

// Quote line kinds that are not a service of the catalogue.
const (
	// KindSpace is the extra space the order buys.
	KindSpace = "space"
	// KindEarlierSpace is extra space bought earlier, aligned to the new expiry.
	KindEarlierSpace = "earlier-space"
)

// registry is every type and version a consumer of this package reads.
var registry = map[string]map[int]func([]byte) (Payload, error){
	TypeSubscriptionOpened: {1: decoder[SubscriptionOpenedV1]},
	TypeSpaceAdded:         {1: decoder[SpaceAddedV1]},
	TypeServicesExtended:   {1: decoder[ServicesExtendedV1]},
	TypeOrderConfirmed:     {1: decoder[OrderConfirmedV1]},
	TypePaymentRegistered:  {1: decoder[PaymentRegisteredV1]},
	TypeOrderPaid:          {1: decoder[OrderPaidV1]},
	TypeOrderCancelled:     {1: decoder[OrderCancelledV1]},
	TypeOrderExpired:       {1: decoder[OrderExpiredV1]},
	TypeSpaceExtended:      {1: decoder[SpaceExtendedV1]},
	TypeCreditDue:          {1: decoder[CreditDueV1]},
	TypeOrderOverdue:       {1: decoder[OrderOverdueV1]},
	TypeOrderAbandoned:     {1: decoder[OrderAbandonedV1]},
}

func decoder[T Payload](b []byte) (Payload, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Types lists the contract's message types, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Known says whether typ is a type of the contract.
func Known(typ string) bool { return len(registry[typ]) > 0 }

// Versions lists the versions of typ this package reads, oldest first (none for an unknown type).
func Versions(typ string) []int {
	var out []int
	for v := range registry[typ] {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Shared shapes.

// Holder is who a subscription belongs to and where its emails go.
type Holder struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Recipient is where an order's emails go, and in which language ("it" or "en").
type Recipient struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Language string `json:"language"`
}

// Service is one active service of a subscription, by its catalogue kind.
type Service struct {
	Kind      string `json:"kind"`
	Label     Text   `json:"label,omitempty"`
	Quantity  int    `json:"quantity"`
	ExpiresOn Date   `json:"expiresOn"`
}

// QuoteLine is one priced item: the space (KindSpace), space bought earlier and aligned
// (KindEarlierSpace), or a service of the catalogue extended to the new expiry, with its
// label (absent for the two kinds of space).
type QuoteLine struct {
	Kind      string `json:"kind"`
	Label     Text   `json:"label,omitempty"`
	Quantity  int    `json:"quantity"`
	Months    int    `json:"months"`
	UnitCents int64  `json:"unitCents"`
	NetCents  int64  `json:"netCents"`
	OldExpiry Date   `json:"oldExpiry,omitzero"`
	NewExpiry Date   `json:"newExpiry,omitzero"`
}

// Quote is the priced order as confirmed: its lines, and net, VAT and total in cents.
type Quote struct {
	OrderDate     Date        `json:"orderDate,omitzero"`
	NewExpiry     Date        `json:"newExpiry,omitzero"`
	CoTermination bool        `json:"coTermination"`
	GB            int         `json:"gb"`
	Lines         []QuoteLine `json:"lines"`
	NetCents      int64       `json:"netCents"`
	VATPercent    int64       `json:"vatPercent"`
	VATCents      int64       `json:"vatCents"`
	TotalCents    int64       `json:"totalCents"`
	Currency      string      `json:"currency,omitempty"`
	// SpaceMonths is how long the space runs once granted, from the day it is paid.
	SpaceMonths int `json:"spaceMonths"`
}

// PaymentMethod is how the customer pays, as the catalogue describes it when the message is
// published. Label is empty when the catalogue does not know the method.
type PaymentMethod struct {
	Code         string `json:"code"`
	Label        Text   `json:"label,omitempty"`
	Instructions Text   `json:"instructions,omitempty"`
	// PaymentLink is where this order is paid (card, PayPal), "" when none.
	PaymentLink string `json:"paymentLink,omitempty"`
	// Beneficiary and IBAN are the bank transfer's, "" for other methods.
	Beneficiary string `json:"beneficiary,omitempty"`
	IBAN        string `json:"iban,omitempty"`
}

// ServiceExtension is one service's new expiry and the months charged for it.
type ServiceExtension struct {
	Kind      string `json:"kind"`
	Label     Text   `json:"label,omitempty"`
	Quantity  int    `json:"quantity"`
	OldExpiry Date   `json:"oldExpiry,omitzero"`
	NewExpiry Date   `json:"newExpiry,omitzero"`
	Months    int    `json:"months"`
}

// BlockExtension is one earlier block of space's new validity and the months charged for it.
type BlockExtension struct {
	OrderID  uuid.UUID `json:"orderId"` // the order that bought the block
	GB       int       `json:"gb"`
	OldUntil Date      `json:"oldUntil,omitzero"`
	NewUntil Date      `json:"newUntil,omitzero"`
	Months   int       `json:"months"`
}

// Subscription messages (the envelope's SubscriptionID names the subscription).

// SubscriptionOpenedV1: a customer's subscription exists, with its base space and services.
type SubscriptionOpenedV1 struct {
	OwnerID  string    `json:"ownerId"`
	Holder   Holder    `json:"holder"`
	Language string    `json:"language"`
	Services []Service `json:"services"`
	BaseGB   int       `json:"baseGB"`
	OpenedOn Date      `json:"openedOn,omitzero"`
}

// SpaceAddedV1: a paid order's space is granted (the envelope's OrderID names the order).
type SpaceAddedV1 struct {
	GB         int  `json:"gb"`
	ValidFrom  Date `json:"validFrom,omitzero"`
	ValidUntil Date `json:"validUntil,omitzero"`
}

// ServicesExtendedV1: with co-termination, a paid order extended the services to the
// space's new expiry.
type ServicesExtendedV1 struct {
	Services []ServiceExtension `json:"services"`
}

// SpaceExtendedV1: co-termination aligned earlier space still valid to the new expiry.
type SpaceExtendedV1 struct {
	Blocks []BlockExtension `json:"blocks"`
}

// Order messages (the envelope's OrderID names the order, SubscriptionID its subscription
// when the fact carries it).

// OrderConfirmedV1: the binding order, awaiting payment: what is charged, how to pay it and
// by when, and who is told. Everything the payment instructions say is here.
type OrderConfirmedV1 struct {
	OwnerID       string        `json:"ownerId"`
	Recipient     Recipient     `json:"recipient"`
	Quote         Quote         `json:"quote"`
	PaymentMethod PaymentMethod `json:"paymentMethod"`
	ConfirmedAt   time.Time     `json:"confirmedAt"`
	// PayBy is the last day to pay before the order expires.
	PayBy Date `json:"payBy,omitzero"`
	// ExpectedRegistrationOn is the working day the payment is expected in the books, the
	// method's ExpectedRegistrationDays working days after the confirmation.
	ExpectedRegistrationOn   Date `json:"expectedRegistrationOn,omitzero"`
	ExpectedRegistrationDays int  `json:"expectedRegistrationDays"`
}

// PaymentRegisteredV1: money arrived for the order. PaidCents is the total so far.
type PaymentRegisteredV1 struct {
	AmountCents  int64     `json:"amountCents"`
	Method       string    `json:"method"`
	Reference    string    `json:"reference"`
	PaidCents    int64     `json:"paidCents"`
	RegisteredAt time.Time `json:"registeredAt"`
}

// OrderPaidV1: the total is covered and the purchase is granted: the space and the services
// it aligns run to GrantedUntil, SpaceMonths from the payment day.
type OrderPaidV1 struct {
	Recipient    Recipient `json:"recipient"`
	Quote        Quote     `json:"quote"`
	PaidCents    int64     `json:"paidCents"`
	ExcessCents  int64     `json:"excessCents,omitempty"` // beyond the total: a credit due
	PaidAt       time.Time `json:"paidAt"`
	GrantedUntil Date      `json:"grantedUntil,omitzero"`
}

// OrderCancelledV1: the order will not go on.
type OrderCancelledV1 struct {
	Reason      string    `json:"reason"`
	CancelledAt time.Time `json:"cancelledAt"`
}

// OrderExpiredV1: the order stayed unpaid past its last day to pay.
type OrderExpiredV1 struct {
	ExpiredAt time.Time `json:"expiredAt"`
}

// OrderOverdueV1: a partly paid order passed its last day to pay; DueCents is still owed.
type OrderOverdueV1 struct {
	PayBy     Date      `json:"payBy,omitzero"`
	PaidCents int64     `json:"paidCents"`
	DueCents  int64     `json:"dueCents"`
	OverdueAt time.Time `json:"overdueAt"`
}

// OrderAbandonedV1: the cart or order form was left untouched, and ended.
type OrderAbandonedV1 struct {
	LastActiveOn Date      `json:"lastActiveOn,omitzero"`
	AbandonedAt  time.Time `json:"abandonedAt"`
}

// CreditDueV1: money received for the order that it will not pay for, owed back to the
// customer (Reason: "excess", "order-cancelled", ...).
type CreditDueV1 struct {
	OwnerID     string    `json:"ownerId"`
	Holder      Holder    `json:"holder"`
	AmountCents int64     `json:"amountCents"`
	Reason      string    `json:"reason"`
	Reference   string    `json:"reference,omitempty"`
	RecordedAt  time.Time `json:"recordedAt"`
}

func (SubscriptionOpenedV1) MessageType() string { return TypeSubscriptionOpened }
func (SpaceAddedV1) MessageType() string         { return TypeSpaceAdded }
func (ServicesExtendedV1) MessageType() string   { return TypeServicesExtended }
func (SpaceExtendedV1) MessageType() string      { return TypeSpaceExtended }
func (OrderConfirmedV1) MessageType() string     { return TypeOrderConfirmed }
func (PaymentRegisteredV1) MessageType() string  { return TypePaymentRegistered }
func (OrderPaidV1) MessageType() string          { return TypeOrderPaid }
func (OrderCancelledV1) MessageType() string     { return TypeOrderCancelled }
func (OrderExpiredV1) MessageType() string       { return TypeOrderExpired }
func (OrderOverdueV1) MessageType() string       { return TypeOrderOverdue }
func (OrderAbandonedV1) MessageType() string     { return TypeOrderAbandoned }
func (CreditDueV1) MessageType() string          { return TypeCreditDue }

func (SubscriptionOpenedV1) MessageVersion() int { return 1 }
func (SpaceAddedV1) MessageVersion() int         { return 1 }
func (ServicesExtendedV1) MessageVersion() int   { return 1 }
func (SpaceExtendedV1) MessageVersion() int      { return 1 }
func (OrderConfirmedV1) MessageVersion() int     { return 1 }
func (PaymentRegisteredV1) MessageVersion() int  { return 1 }
func (OrderPaidV1) MessageVersion() int          { return 1 }
func (OrderCancelledV1) MessageVersion() int     { return 1 }
func (OrderExpiredV1) MessageVersion() int       { return 1 }
func (OrderOverdueV1) MessageVersion() int       { return 1 }
func (OrderAbandonedV1) MessageVersion() int     { return 1 }
func (CreditDueV1) MessageVersion() int          { return 1 }
