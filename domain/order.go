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
	// StatusAbandoned: a cart or order form left untouched for the catalogue's days.
	StatusAbandoned OrderStatus = "abandoned"
	// StatusOverdue: partly paid and past its last day to pay; an operator may cancel it.
	StatusOverdue OrderStatus = "overdue"
)

// InProgress reports whether the order still holds its subscription's order slot.
func (s OrderStatus) InProgress() bool {
	return s == StatusCart || s == StatusCheckout || s == StatusConfirmed || s == StatusOverdue
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
	// Space is the purchased space as it was when the order was requested. While the order
	// holds its subscription's slot, no other order can change the services or the space,
	// so these copies are the subscription's state on any later day too.
	Space         []SpaceBlock
	Channel       string
	Status        OrderStatus
	Quote         Quote
	PaymentMethod string
	Acceptances   Acceptances
	RequestedAt   time.Time
	ConfirmedAt   time.Time
	PayBy         Date
	PaidCents     int64
	PaidAt        time.Time // when the total was covered
	// Payments maps each registered transaction reference to its amount: a payment
	// registered again under the same reference is recognised and not counted twice.
	Payments map[string]int64
	// Emails are the emails sent about the order, by kind (EmailSent).
	Emails map[string]EmailSent
	// EmailsGivenUp are the emails the mailer gave up, by kind (EmailGivenUp).
	EmailsGivenUp map[string]EmailGivenUp
	// Credits are the money received that the order did not take: owed to the customer.
	Credits     []Credit
	CreditCents int64
}

// Credit is money received for an order and owed back to the customer.
type Credit struct {
	AmountCents int64     `json:"amountCents"`
	Reason      string    `json:"reason"`
	Reference   string    `json:"reference,omitempty"`
	RecordedAt  time.Time `json:"recordedAt"`
}

// DueCents is what remains to be paid.
func (o Order) DueCents() int64 { return o.Quote.TotalCents - o.PaidCents }

// SubscriptionActive reports whether the subscription's base service is active on day, by
// the order's copy of the services (which no other order can change meanwhile).
func (o Order) SubscriptionActive(day Date) bool {
	for _, s := range o.Services {
		if s.Kind == KindBase {
			return !s.ExpiresOn.Before(day)
		}
	}
	return false
}

// AbandonsOn is the first day on which the cart or order form counts as abandoned: its
// quote's day (the last day it was touched, since a command on a later day prices it
// again) plus the catalogue's days.
func (o Order) AbandonsOn(cat *Catalogue) Date { return o.Quote.OrderDate.AddDays(cat.AbandonDays()) }

// Abandoned says whether o is a cart or order form nobody touched from its AbandonsOn day
// to today: the one rule by which a cart ends for lack of use.
func (o Order) Abandoned(cat *Catalogue, today Date) bool {
	return (o.Status == StatusCart || o.Status == StatusCheckout) && !today.Before(o.AbandonsOn(cat))
}

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

// ConfirmOrder makes the order binding. ExpectedTotalCents, when given, is the total the
// customer was shown: another total refuses the confirmation (ErrQuoteChanged).
type ConfirmOrder struct {
	AcceptGeneralConditions bool
	ApproveUnfairTerms      bool
	AcknowledgePrivacy      bool
	TermsVersion            string
	ExpectedTotalCents      *int64
}

// RegisterPayment records money received for the order.
type RegisterPayment struct {
	AmountCents int64
	Method      string
	Reference   string
}

// CancelOrder abandons the order. Only an operator (ByOperator) may cancel a partly paid
// order; what was paid becomes a credit due.
type CancelOrder struct {
	Reason     string
	ByOperator bool
}

// ExpireOrder ends a confirmed order left unpaid past its payment term.
type ExpireOrder struct{}

// RepriceOrder prices a cart or order form again from today, when its quote is of an
// earlier day (a refused confirmation records the new quote this way).
type RepriceOrder struct{}

// AbandonOrder ends a cart or order form untouched for the catalogue's days.
type AbandonOrder struct{}

// SweepOrder is the sweeper's: whatever the calendar has made of the order, recorded —
// an abandoned cart, a confirmed order unpaid past its term (expired), or partly paid past
// it (overdue). Anything else is ErrNothingToSweep.
type SweepOrder struct{}

// OrderCommand is one of the commands above.
type OrderCommand interface {
	Command
	isOrderCommand()
}

func (RequestSpaceIncrease) isOrderCommand() {}
func (ToggleCoTermination) isOrderCommand()  {}
func (ProceedToCheckout) isOrderCommand()    {}
func (SelectPaymentMethod) isOrderCommand()  {}
func (ModifyOrder) isOrderCommand()          {}
func (ConfirmOrder) isOrderCommand()         {}
func (RegisterPayment) isOrderCommand()      {}
func (CancelOrder) isOrderCommand()          {}
func (ExpireOrder) isOrderCommand()          {}
func (RepriceOrder) isOrderCommand()         {}
func (AbandonOrder) isOrderCommand()         {}
func (SweepOrder) isOrderCommand()           {}

func (RequestSpaceIncrease) CommandName() string { return "RequestSpaceIncrease" }
func (ToggleCoTermination) CommandName() string  { return "ToggleCoTermination" }
func (ProceedToCheckout) CommandName() string    { return "ProceedToCheckout" }
func (SelectPaymentMethod) CommandName() string  { return "SelectPaymentMethod" }
func (ModifyOrder) CommandName() string          { return "ModifyOrder" }
func (ConfirmOrder) CommandName() string         { return "ConfirmOrder" }
func (RegisterPayment) CommandName() string      { return "RegisterPayment" }
func (CancelOrder) CommandName() string          { return "CancelOrder" }
func (ExpireOrder) CommandName() string          { return "ExpireOrder" }
func (RepriceOrder) CommandName() string         { return "RepriceOrder" }
func (AbandonOrder) CommandName() string         { return "AbandonOrder" }
func (SweepOrder) CommandName() string           { return "SweepOrder" }

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
		return toggleCoTermination(cat, o, c, now)
	case ProceedToCheckout:
		return proceedToCheckout(cat, o, now)
	case SelectPaymentMethod:
		return selectPaymentMethod(cat, o, c, now)
	case ModifyOrder:
		return modifyOrder(cat, o, c, now)
	case RepriceOrder:
		if err := o.mustBe(StatusCart, StatusCheckout); err != nil {
			return nil, err
		}
		pre, _, err := reprice(cat, o, now)
		return pre, err
	case ConfirmOrder:
		return confirmOrder(cat, o, c, now)
	case RegisterPayment:
		return registerPayment(cat, o, c, now)
	case CancelOrder:
		return cancelOrder(o, c, now)
	case RecordEmailSent:
		return recordEmailSent(o, c)
	case RecordEmailGivenUp:
		return recordEmailGivenUp(o, c)
	case ExpireOrder:
		return expireOrder(o, now)
	case AbandonOrder:
		return abandonOrder(cat, o, now)
	case SweepOrder:
		return sweepOrder(cat, o, now)
	}
	return nil, fmt.Errorf("domain: unknown order command %T", cmd)
}

func toggleCoTermination(cat *Catalogue, o Order, c ToggleCoTermination, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCart); err != nil {
		return nil, err
	}
	pre, o, err := reprice(cat, o, now)
	if err != nil || c.Enabled == o.Quote.CoTermination {
		return pre, err
	}
	q, err := cat.QuoteFor(o.Services, o.Space, o.Quote.GB, c.Enabled, DateOf(now))
	if err != nil {
		return nil, err
	}
	return append(pre, CoTerminationToggled{Enabled: c.Enabled, Quote: q}), nil
}

func proceedToCheckout(cat *Catalogue, o Order, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCart); err != nil {
		return nil, err
	}
	pre, _, err := reprice(cat, o, now)
	if err != nil {
		return nil, err
	}
	return append(pre, CheckoutStarted{}), nil
}

func selectPaymentMethod(cat *Catalogue, o Order, c SelectPaymentMethod, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCheckout); err != nil {
		return nil, err
	}
	if _, ok := cat.Method(c.Method); !ok {
		return nil, fmt.Errorf("%w: %q (accepted: %s)", ErrUnknownPaymentMethod, c.Method, strings.Join(cat.MethodCodes(), ", "))
	}
	pre, _, err := reprice(cat, o, now)
	if err != nil {
		return nil, err
	}
	return append(pre, PaymentMethodSelected{Method: c.Method}), nil
}

func modifyOrder(cat *Catalogue, o Order, c ModifyOrder, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCart, StatusCheckout); err != nil {
		return nil, err
	}
	q, err := cat.QuoteFor(o.Services, o.Space, c.GB, c.CoTermination, DateOf(now))
	if err != nil {
		return nil, err
	}
	pre, _, err := reprice(cat, o, now)
	if err != nil {
		return nil, err
	}
	return append(pre, OrderModified{GB: c.GB, CoTermination: c.CoTermination, Quote: q}), nil
}

func cancelOrder(o Order, c CancelOrder, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCart, StatusCheckout, StatusConfirmed, StatusOverdue); err != nil {
		return nil, err
	}
	if o.PaidCents > 0 && !c.ByOperator {
		return nil, ErrOrderPartiallyPaid
	}
	events := []Event{OrderCancelled{Reason: clip(c.Reason, maxNameLen), CancelledAt: now}}
	if o.PaidCents > 0 {
		// What was paid is not kept for nothing: it is owed back.
		events = append(events, o.credit(o.PaidCents, CreditCancelledPartlyPaid, "", now))
	}
	return events, nil
}

func expireOrder(o Order, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusConfirmed); err != nil {
		return nil, err
	}
	if !DateOf(now).After(o.PayBy) {
		return nil, fmt.Errorf("%w: payable until %s", ErrPaymentTermNotReached, o.PayBy)
	}
	if o.PaidCents > 0 {
		// Money was received: expiring would keep it and grant nothing. The order is
		// overdue instead (SweepOrder), and an operator may cancel it.
		return nil, ErrOrderPartiallyPaid
	}
	return []Event{OrderExpired{ExpiredAt: now}}, nil
}

func abandonOrder(cat *Catalogue, o Order, now time.Time) ([]Event, error) {
	if err := o.mustBe(StatusCart, StatusCheckout); err != nil {
		return nil, err
	}
	if !o.Abandoned(cat, DateOf(now)) {
		return nil, fmt.Errorf("%w: last touched on %s, abandoned from %s", ErrCartNotAbandoned, o.Quote.OrderDate, o.AbandonsOn(cat))
	}
	return []Event{OrderAbandoned{LastActiveOn: o.Quote.OrderDate, AbandonedAt: now}}, nil
}

// sweepOrder is the sweeper's one command: whichever ending the calendar has brought.
func sweepOrder(cat *Catalogue, o Order, now time.Time) ([]Event, error) {
	today := DateOf(now)
	switch {
	case o.Abandoned(cat, today):
		return abandonOrder(cat, o, now)
	case o.Status == StatusConfirmed && today.After(o.PayBy) && o.PaidCents == 0:
		return expireOrder(o, now)
	case o.Status == StatusConfirmed && today.After(o.PayBy):
		return []Event{OrderOverdue{PayBy: o.PayBy, PaidCents: o.PaidCents, DueCents: o.DueCents(), OverdueAt: now}}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNothingToSweep, o.Status)
}

// reprice prices a cart or order form again when its quote is of a day before now's: the
// QuoteRepriced to record first, and the order as it stands after it. A quote of today is
// left as it is. A subscription whose service is no longer active cannot be priced.
func reprice(cat *Catalogue, o Order, now time.Time) ([]Event, Order, error) {
	today := DateOf(now)
	if o.Quote.OrderDate == today {
		return nil, o, nil
	}
	if !o.SubscriptionActive(today) {
		return nil, o, ErrSubscriptionNotActive
	}
	q, err := cat.QuoteFor(o.Services, o.Space, o.Quote.GB, o.Quote.CoTermination, today)
	if err != nil {
		return nil, o, err
	}
	ev := QuoteRepriced{PreviousOrderDate: o.Quote.OrderDate, PreviousTotalCents: o.Quote.TotalCents, Quote: q, RepricedAt: now}
	return []Event{ev}, EvolveOrder(o, ev), nil
}

// credit is a CreditDue of amount owed back to the order's customer.
func (o Order) credit(amount int64, reason, reference string, now time.Time) CreditDue {
	return CreditDue{
		OrderID: o.ID, SubscriptionID: o.SubscriptionID, OwnerID: o.OwnerID, Holder: o.Holder,
		AmountCents: amount, Reason: reason, Reference: reference, RecordedAt: now,
	}
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
	var space []SpaceBlock
	for _, b := range sub.Space {
		if !today.After(b.ValidUntil) {
			space = append(space, b)
		}
	}
	q, err := cat.QuoteFor(sub.Services, space, c.GB, true, today)
	if err != nil {
		return nil, err
	}
	return []Event{SpaceIncreaseRequested{
		Space:          space,
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

// recipient is whom the order's emails go to: the subscription's holder, in its language.
func (o Order) recipient() Recipient {
	return Recipient{Name: o.Holder.Name, Email: o.Holder.Email, Language: o.Language}
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
	case c.ExpectedTotalCents != nil && (*c.ExpectedTotalCents < 0 || *c.ExpectedTotalCents > MaxAmountCents):
		return nil, fieldErr("expectedTotalCents", ErrAmountOutOfRange, "%d cents", *c.ExpectedTotalCents)
	}
	today := DateOf(now)
	if !o.SubscriptionActive(today) {
		return nil, ErrSubscriptionNotActive
	}
	if o.Quote.OrderDate != today {
		// The customer saw another day's quote: nothing is confirmed; the order is priced
		// again (the handler records it with RepriceOrder) and the new quote is shown.
		_, repriced, err := reprice(cat, o, now)
		if err != nil {
			return nil, err
		}
		return nil, &QuoteChangedError{Quote: repriced.Quote, Repriced: true}
	}
	if c.ExpectedTotalCents != nil && *c.ExpectedTotalCents != o.Quote.TotalCents {
		return nil, &QuoteChangedError{Quote: o.Quote}
	}
	return []Event{OrderConfirmed{
		OrderID:        o.ID,
		SubscriptionID: o.SubscriptionID,
		OwnerID:        o.OwnerID,
		Quote:          o.Quote,
		PaymentMethod:  o.PaymentMethod,
		Recipient:      o.recipient(),
		Acceptances: Acceptances{
			GeneralConditions: true, UnfairTerms: true, Privacy: true,
			TermsVersion: strings.TrimSpace(c.TermsVersion), AcceptedAt: now,
		},
		ConfirmedAt:              now,
		PayBy:                    today.AddDays(cat.PaymentTermDays),
		ExpectedRegistrationDays: method.RegistrationDays,
		ExpectedRegistrationOn:   today.AddWorkingDays(method.RegistrationDays),
	}}, nil
}

// registerPayment records money received. Only a malformed request is refused: money that
// arrived is recorded, and what the order does not take (an excess, or all of it when the
// order is not payable) becomes a credit due to the customer.
func registerPayment(cat *Catalogue, o Order, c RegisterPayment, now time.Time) ([]Event, error) {
	ref := strings.TrimSpace(c.Reference)
	switch {
	case c.AmountCents <= 0:
		return nil, fieldErr("amountCents", ErrInvalidAmount, "%d", c.AmountCents)
	case c.AmountCents > MaxAmountCents:
		return nil, fieldErr("amountCents", ErrAmountOutOfRange, "%d cents, at most %d", c.AmountCents, MaxAmountCents)
	}
	if prev, seen := o.Payments[ref]; seen && ref != "" {
		// The same transaction again (a gateway retry): it was counted once already.
		if prev != c.AmountCents {
			return nil, ErrPaymentReferenceReused
		}
		return nil, nil
	}
	switch {
	case ref == "" || len(ref) > maxReferenceLen || !utf8.ValidString(ref) || strings.ContainsFunc(ref, isControl):
		return nil, ErrPaymentReference
	}
	if _, ok := cat.Method(c.Method); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPaymentMethod, c.Method)
	}
	if reason := creditReason(o, DateOf(now)); reason != "" {
		return []Event{
			PaymentRegistered{AmountCents: c.AmountCents, Method: c.Method, Reference: ref, PaidCents: o.PaidCents, RegisteredAt: now},
			o.credit(c.AmountCents, reason, ref, now),
		}, nil
	}
	applied := min(c.AmountCents, o.DueCents())
	excess := c.AmountCents - applied
	paid := o.PaidCents + applied
	events := []Event{PaymentRegistered{
		AmountCents: c.AmountCents, Method: c.Method, Reference: ref, PaidCents: paid, RegisteredAt: now,
	}}
	if paid == o.Quote.TotalCents {
		events = append(events, OrderPaid{
			OrderID: o.ID, SubscriptionID: o.SubscriptionID, Quote: o.Quote, PaidCents: paid, PaidAt: now,
			Recipient:   o.recipient(),
			ExcessCents: excess,
		})
	}
	if excess > 0 {
		events = append(events, o.credit(excess, CreditExcess, ref, now))
	}
	return events, nil
}

// creditReason says why a payment for o, on the day today, cannot go to the order and is
// kept as the customer's credit; "" when the order takes it.
func creditReason(o Order, today Date) string {
	switch o.Status {
	case StatusConfirmed:
		if !o.SubscriptionActive(today) {
			return CreditSubscriptionNotActive
		}
	case StatusCart, StatusCheckout:
		return CreditOrderNotConfirmed
	case StatusPaid:
		return CreditOrderPaid
	case StatusCancelled:
		return CreditOrderCancelled
	case StatusExpired:
		return CreditOrderExpired
	case StatusAbandoned:
		return CreditOrderAbandoned
	case StatusOverdue:
		return CreditOrderOverdue
	}
	return ""
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
	case StatusAbandoned:
		return ErrOrderAbandoned
	case StatusOverdue:
		return ErrOrderOverdue
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
			Status: StatusCart, Quote: e.Quote, RequestedAt: e.RequestedAt, Space: slices.Clone(e.Space),
		}
	case QuoteRepriced:
		o.Quote = e.Quote
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
	case EmailGivenUp:
		o = o.withGivenUp(e)
	case OrderAbandoned:
		o.Status = StatusAbandoned
	case OrderOverdue:
		o.Status = StatusOverdue
	case CreditDue:
		o.Credits = append(slices.Clip(o.Credits), Credit{AmountCents: e.AmountCents, Reason: e.Reason, Reference: e.Reference, RecordedAt: e.RecordedAt})
		o.CreditCents += e.AmountCents
	}
	return o
}
