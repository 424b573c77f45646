package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// OrderStatus is where an order stands in the help page's flow.
type OrderStatus string

const (
	StatusNone      OrderStatus = ""          // no such order yet
	StatusCart      OrderStatus = "cart"      // space requested; co-termination can be switched
	StatusCheckout  OrderStatus = "checkout"  // on the order form: payment method, acceptances
	StatusConfirmed OrderStatus = "confirmed" // binding, waiting for payment
	StatusPaid      OrderStatus = "paid"
	StatusCancelled OrderStatus = "cancelled"
	StatusExpired   OrderStatus = "expired"
)

// InProgress reports whether the order still holds its subscription's order slot.
func (s OrderStatus) InProgress() bool {
	return s == StatusCart || s == StatusCheckout || s == StatusConfirmed
}

// Channels the customer orders from.
var Channels = []string{"panel", "customer-area", "app"}

// Order is an order as its events leave it.
type Order struct {
	ID             uuid.UUID
	SubscriptionID uuid.UUID
	OwnerID        string
	Holder         Holder
	Language       string
	Services       []Service // as they were when the order was requested
	Channel        string
	Status         OrderStatus
	Quote          Quote
	PaymentMethod  string
	Acceptances    Acceptances
	RequestedAt    time.Time
	ConfirmedAt    time.Time
	PayBy          Date
	PaidCents      int64
	PaidAt         time.Time // when the total was covered
	// Payments maps each registered transaction reference to its amount: a payment
	// registered again under the same reference is recognised and not counted twice.
	Payments map[string]int64
	// Emails are the emails sent about the order, by kind (EmailSent).
	Emails map[string]EmailSent
}

// DueCents is what remains to be paid.
func (o Order) DueCents() int64 { return o.Quote.TotalCents - o.PaidCents }

// Order commands.

// RequestSpaceIncrease opens the cart. Subscription is its state when the order is made:
// the quote is computed from its services.
type RequestSpaceIncrease struct {
	OrderID      uuid.UUID
	Subscription Subscription
	GB           int
	Channel      string
}

// ToggleCoTermination switches the extension of the other services on or off.
type ToggleCoTermination struct{ Enabled bool }

// ProceedToCheckout moves from the cart to the order form.
type ProceedToCheckout struct{}

// SelectPaymentMethod chooses how to pay, by catalogue code.
type SelectPaymentMethod struct{ Method string }

// ModifyOrder goes back to the cart with a new quantity and co-termination.
type ModifyOrder struct {
	GB            int
	CoTermination bool
}

// ConfirmOrder makes the order binding.
type ConfirmOrder struct {
	AcceptGeneralConditions bool
	ApproveUnfairTerms      bool
	AcknowledgePrivacy      bool
	TermsVersion            string
}

// RegisterPayment records money received for the order.
type RegisterPayment struct {
	AmountCents int64
	Method      string
	Reference   string
}

// CancelOrder abandons the order.
type CancelOrder struct{ Reason string }

// ExpireOrder ends a confirmed order left unpaid past its payment term (the sweeper's).
type ExpireOrder struct{}

// OrderCommand is one of the commands above.
type OrderCommand interface{ isOrderCommand() }

func (RequestSpaceIncrease) isOrderCommand() {}
func (ToggleCoTermination) isOrderCommand()  {}
func (ProceedToCheckout) isOrderCommand()    {}
func (SelectPaymentMethod) isOrderCommand()  {}
func (ModifyOrder) isOrderCommand()          {}
func (ConfirmOrder) isOrderCommand()         {}
func (RegisterPayment) isOrderCommand()      {}
func (CancelOrder) isOrderCommand()          {}
func (ExpireOrder) isOrderCommand()          {}

const maxReferenceLen = 128

// DecideOrder answers a command with the events it causes, or a refusal.
// An empty answer with no error means the command had already taken effect.
func DecideOrder(cat *Catalogue, o Order, cmd OrderCommand, now time.Time) ([]Event, error) {
	if c, ok := cmd.(RequestSpaceIncrease); ok {
		return requestSpaceIncrease(cat, o, c, now)
	}
	if o.Status == StatusNone {
		return nil, ErrUnknownOrder
	}
	switch c := cmd.(type) {
	case ToggleCoTermination:
		if err := o.mustBe(StatusCart); err != nil {
			return nil, err
		}
		if c.Enabled == o.Quote.CoTermination {
			return nil, nil
		}
		q, err := cat.Quote(o.Services, o.Quote.GB, c.Enabled, o.Quote.OrderDate)
		if err != nil {
			return nil, err
		}
		return []Event{CoTerminationToggled{Enabled: c.Enabled, Quote: q}}, nil
	case ProceedToCheckout:
		if err := o.mustBe(StatusCart); err != nil {
			return nil, err
		}
		return []Event{CheckoutStarted{}}, nil
	case SelectPaymentMethod:
		if err := o.mustBe(StatusCheckout); err != nil {
			return nil, err
		}
		if _, ok := cat.Method(c.Method); !ok {
			return nil, fmt.Errorf("%w: %q (accepted: %s)", ErrUnknownPaymentMethod, c.Method, strings.Join(cat.MethodCodes(), ", "))
		}
		return []Event{PaymentMethodSelected{Method: c.Method}}, nil
	case ModifyOrder:
		if err := o.mustBe(StatusCart, StatusCheckout); err != nil {
			return nil, err
		}
		q, err := cat.Quote(o.Services, c.GB, c.CoTermination, o.Quote.OrderDate)
		if err != nil {
			return nil, err
		}
		return []Event{OrderModified{GB: c.GB, CoTermination: c.CoTermination, Quote: q}}, nil
	case ConfirmOrder:
		return confirmOrder(cat, o, c, now)
	case RegisterPayment:
		return registerPayment(cat, o, c, now)
	case CancelOrder:
		if err := o.mustBe(StatusCart, StatusCheckout, StatusConfirmed); err != nil {
			return nil, err
		}
		if o.PaidCents > 0 {
			return nil, ErrOrderPartiallyPaid
		}
		return []Event{OrderCancelled{Reason: clip(c.Reason, maxNameLen), CancelledAt: now}}, nil
	case RecordEmailSent:
		return recordEmailSent(o, c)
	case ExpireOrder:
		if err := o.mustBe(StatusConfirmed); err != nil {
			return nil, err
		}
		if !DateOf(now).After(o.PayBy) {
			return nil, fmt.Errorf("%w: payable until %s", ErrPaymentTermNotReached, o.PayBy)
		}
		if o.PaidCents > 0 {
			// Money was received: expiring would keep it and grant nothing, and drop the
			// order from finance's pending list. It stays pending until paid in full.
			return nil, ErrOrderPartiallyPaid
		}
		return []Event{OrderExpired{ExpiredAt: now}}, nil
	}
	return nil, fmt.Errorf("domain: unknown order command %T", cmd)
}

func requestSpaceIncrease(cat *Catalogue, o Order, c RequestSpaceIncrease, now time.Time) ([]Event, error) {
	if o.Status != StatusNone {
		return nil, ErrOrderExists
	}
	sub := c.Subscription
	if !sub.Opened {
		return nil, ErrUnknownSubscription
	}
	today := DateOf(now)
	if sub.Closed(today) {
		return nil, ErrSubscriptionClosed
	}
	if !slices.Contains(Channels, c.Channel) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidChannel, c.Channel)
	}
	q, err := cat.Quote(sub.Services, c.GB, true, today)
	if err != nil {
		return nil, err
	}
	return []Event{SpaceIncreaseRequested{
		OrderID:        c.OrderID,
		SubscriptionID: sub.ID,
		OwnerID:        sub.OwnerID,
		Holder:         sub.Holder,
		Language:       sub.Language,
		Services:       slices.Clone(sub.Services),
		Channel:        c.Channel,
		Quote:          q,
		RequestedAt:    now,
	}}, nil
}

func confirmOrder(cat *Catalogue, o Order, c ConfirmOrder, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCheckout); err != nil {
		return nil, err
	}
	method, ok := cat.Method(o.PaymentMethod)
	switch {
	case o.PaymentMethod == "":
		return nil, ErrPaymentMethodMissing
	case !ok:
		// The catalogue dropped the method after it was chosen: the customer must choose again.
		return nil, fmt.Errorf("%w: %q", ErrUnknownPaymentMethod, o.PaymentMethod)
	case !c.AcceptGeneralConditions:
		return nil, ErrGeneralConditions
	case !c.ApproveUnfairTerms:
		return nil, ErrUnfairTerms
	case !c.AcknowledgePrivacy:
		return nil, ErrPrivacy
	case strings.TrimSpace(c.TermsVersion) == "" || len(c.TermsVersion) > maxIDLen || !utf8.ValidString(c.TermsVersion) || strings.ContainsFunc(strings.TrimSpace(c.TermsVersion), isControl):
		return nil, ErrTermsVersionMissing
	}
	return []Event{OrderConfirmed{
		OrderID:        o.ID,
		SubscriptionID: o.SubscriptionID,
		OwnerID:        o.OwnerID,
		Quote:          o.Quote,
		PaymentMethod:  o.PaymentMethod,
		Recipient:      Recipient{Name: o.Holder.Name, Email: o.Holder.Email, Language: o.Language},
		Acceptances: Acceptances{
			GeneralConditions: true, UnfairTerms: true, Privacy: true,
			TermsVersion: strings.TrimSpace(c.TermsVersion), AcceptedAt: now,
		},
		ConfirmedAt:              now,
		PayBy:                    DateOf(now).AddDays(cat.PaymentTermDays),
		ExpectedRegistrationDays: method.RegistrationDays,
	}}, nil
}

func registerPayment(cat *Catalogue, o Order, c RegisterPayment, now time.Time) ([]Event, error) {
	ref := strings.TrimSpace(c.Reference)
	if prev, seen := o.Payments[ref]; seen && ref != "" {
		// The same transaction again (a gateway retry): it was counted once already.
		if prev != c.AmountCents {
			return nil, ErrPaymentReferenceReused
		}
		return nil, nil
	}
	if err := o.mustBe(StatusConfirmed); err != nil {
		return nil, err
	}
	switch {
	case c.AmountCents <= 0:
		return nil, fmt.Errorf("%w: %d", ErrInvalidAmount, c.AmountCents)
	case ref == "" || len(ref) > maxReferenceLen || !utf8.ValidString(ref) || strings.ContainsFunc(ref, isControl):
		return nil, ErrPaymentReference
	case c.AmountCents > o.DueCents():
		return nil, fmt.Errorf("%w: %d cents, %d due", ErrPaymentExceedsDue, c.AmountCents, o.DueCents())
	}
	if _, ok := cat.Method(c.Method); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPaymentMethod, c.Method)
	}
	paid := o.PaidCents + c.AmountCents
	events := []Event{PaymentRegistered{
		AmountCents: c.AmountCents, Method: c.Method, Reference: ref, PaidCents: paid, RegisteredAt: now,
	}}
	if paid == o.Quote.TotalCents {
		events = append(events, OrderPaid{
			OrderID: o.ID, SubscriptionID: o.SubscriptionID, Quote: o.Quote, PaidCents: paid, PaidAt: now,
			Recipient: Recipient{Name: o.Holder.Name, Email: o.Holder.Email, Language: o.Language},
		})
	}
	return events, nil
}

// mustBe refuses a command unless the order is in one of the given states, with the error
// that tells the customer why.
func (o Order) mustBe(allowed ...OrderStatus) error {
	if slices.Contains(allowed, o.Status) {
		return nil
	}
	switch o.Status {
	case StatusConfirmed:
		return ErrOrderAlreadyConfirmed
	case StatusPaid:
		return ErrOrderAlreadyPaid
	case StatusCancelled:
		return ErrOrderCancelled
	case StatusExpired:
		return ErrOrderExpired
	case StatusCheckout:
		if slices.Contains(allowed, StatusConfirmed) {
			return ErrOrderNotConfirmed
		}
		return ErrNotInCart
	default: // the cart
		if slices.Contains(allowed, StatusConfirmed) {
			return ErrOrderNotConfirmed
		}
		return ErrNotAtCheckout
	}
}

// clip makes free text safe to keep: valid UTF-8, control characters (line breaks that
// could forge log lines or CSV rows) turned into spaces, at most n characters.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// EvolveOrder folds one event into the state. It never changes the state it is given.
func EvolveOrder(o Order, ev Event) Order {
	switch e := ev.(type) {
	case SpaceIncreaseRequested:
		o = Order{
			ID: e.OrderID, SubscriptionID: e.SubscriptionID, OwnerID: e.OwnerID, Holder: e.Holder,
			Language: e.Language, Services: slices.Clone(e.Services), Channel: e.Channel,
			Status: StatusCart, Quote: e.Quote, RequestedAt: e.RequestedAt,
		}
	case CoTerminationToggled:
		o.Quote = e.Quote
	case CheckoutStarted:
		o.Status = StatusCheckout
	case PaymentMethodSelected:
		o.PaymentMethod = e.Method
	case OrderModified:
		o.Quote, o.Status, o.PaymentMethod = e.Quote, StatusCart, ""
	case OrderConfirmed:
		o.Status, o.Quote, o.PaymentMethod = StatusConfirmed, e.Quote, e.PaymentMethod
		o.Acceptances, o.ConfirmedAt, o.PayBy = e.Acceptances, e.ConfirmedAt, e.PayBy
	case PaymentRegistered:
		payments := make(map[string]int64, len(o.Payments)+1)
		for ref, amount := range o.Payments {
			payments[ref] = amount
		}
		payments[e.Reference] = e.AmountCents
		o.Payments, o.PaidCents = payments, e.PaidCents
	case OrderPaid:
		o.Status, o.PaidAt = StatusPaid, e.PaidAt
	case OrderCancelled:
		o.Status = StatusCancelled
	case OrderExpired:
		o.Status = StatusExpired
	case EmailSent:
		o = o.withEmail(e)
	}
	return o
}
