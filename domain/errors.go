package domain

import (
	"errors"
	"fmt"
)

// Error is a refusal of the domain: a stable code (the HTTP layer's problem type), a kind
// that says what went wrong in general, and a message a frontend can show as it is.
// Each is a single exported value, compared with errors.Is; details are wrapped around it
// with fmt.Errorf("%w: ...").
type Error struct {
	Code    string
	Kind    ErrorKind
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrorKind groups refusals by what the caller did wrong.
type ErrorKind int

const (
	// Invalid: the command itself breaks a rule (a value out of range, a missing acceptance).
	Invalid ErrorKind = iota + 1
	// WrongState: the command is fine but not now (confirm twice, pay a cancelled order).
	WrongState
	// NotFound: the aggregate the command addresses does not exist.
	NotFound
)

// AsError finds the domain refusal in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func invalid(code, msg string) *Error    { return &Error{Code: code, Kind: Invalid, Message: msg} }
func wrongState(code, msg string) *Error { return &Error{Code: code, Kind: WrongState, Message: msg} }

// Subscription refusals.
var (
	ErrUnknownSubscription = &Error{Code: "unknown-subscription", Kind: NotFound, Message: "The subscription does not exist."}
	ErrSubscriptionExists  = wrongState("subscription-exists", "The subscription is already open.")
	ErrSubscriptionClosed  = wrongState("subscription-closed", "The subscription's service has expired: renew it before buying more space.")
	ErrOrderInProgress     = wrongState("order-in-progress", "Another order for this subscription is in progress: complete or cancel it first.")
	ErrInvalidOwner        = invalid("invalid-owner", "The owner customer id is missing or too long.")
	ErrInvalidHolder       = invalid("invalid-holder", "The holder needs a name and a valid reference email.")
	ErrInvalidLanguage     = invalid("invalid-language", "The language must be \"it\" or \"en\".")
	ErrInvalidServices     = invalid("invalid-services", "The services must include the base service, each kind once, with a quantity of at least 1 and an expiry date.")
	ErrUnknownServiceKind  = invalid("unknown-service-kind", "The service kind is not in the catalogue.")
	ErrInvalidUsage        = invalid("invalid-usage", "Used space must be zero or more bytes, and at most 1 PiB.")
	// ErrSubscriptionNotActive: the base service is no longer active today, so the
	// subscription cannot buy (confirm, or have an order paid).
	ErrSubscriptionNotActive = invalid("subscription-not-active", "The subscription's service is no longer active: renew it before buying more space.")
)

// Order refusals.
var (
	ErrUnknownOrder          = &Error{Code: "unknown-order", Kind: NotFound, Message: "The order does not exist."}
	ErrOrderExists           = wrongState("order-exists", "The order already exists.")
	ErrInvalidQuantity       = invalid("invalid-quantity", "The quantity of space must be a whole number of GB in the allowed range.")
	ErrInvalidChannel        = invalid("invalid-channel", "The channel must be panel, customer-area or app.")
	ErrUnknownPaymentMethod  = invalid("unknown-payment-method", "The payment method is not one we accept.")
	ErrPaymentMethodMissing  = invalid("payment-method-missing", "Choose a payment method before confirming.")
	ErrGeneralConditions     = invalid("general-conditions-not-accepted", "The general conditions of contract must be accepted.")
	ErrUnfairTerms           = invalid("unfair-terms-not-approved", "The unfair-terms clauses must be specifically approved.")
	ErrPrivacy               = invalid("privacy-not-acknowledged", "The privacy notice must be acknowledged.")
	ErrTermsVersionMissing   = invalid("terms-version-missing", "The version of the terms accepted is missing.")
	ErrInvalidAmount         = invalid("invalid-amount", "The amount must be more than zero cents.")
	ErrAmountOutOfRange      = invalid("amount-out-of-range", "An amount is larger than the largest allowed.")
	ErrPaymentReference      = invalid("payment-reference-missing", "The payment needs a transaction reference.")
	ErrNotInCart             = wrongState("order-not-in-cart", "The order is on the order form: modify it to change the cart.")
	ErrNotAtCheckout         = wrongState("order-not-at-checkout", "Proceed to the order form first.")
	ErrOrderAlreadyConfirmed = wrongState("order-already-confirmed", "The order is already confirmed and can no longer change.")
	ErrOrderNotConfirmed     = wrongState("order-not-confirmed", "The order is not confirmed yet.")
	ErrOrderAlreadyPaid      = wrongState("order-already-paid", "The order is already paid.")
	ErrOrderCancelled        = wrongState("order-cancelled", "The order was cancelled.")
	ErrOrderExpired          = wrongState("order-expired", "The order expired unpaid.")
	ErrOrderPartiallyPaid    = wrongState("order-partially-paid", "Part of the order is paid: only an operator can cancel it, and what was paid becomes a credit due to the customer.")
	ErrOrderAbandoned        = wrongState("order-abandoned", "The cart was left untouched too long and has ended: start a new order.")
	ErrOrderOverdue          = wrongState("order-overdue", "The order is partly paid and past its payment term: an operator must cancel it.")
	// ErrQuoteChanged: the quote the customer saw is not today's (another day, or another
	// total): nothing is confirmed, and the refusal carries the new quote (QuoteChangedError).
	ErrQuoteChanged           = wrongState("quote-changed", "The price or the dates of the order have changed: check the new quote and confirm again.")
	ErrNothingToSweep         = wrongState("nothing-to-sweep", "The order is not due to be abandoned, expired or marked overdue.")
	ErrCartNotAbandoned       = wrongState("cart-not-abandoned", "The cart was touched recently and is not abandoned.")
	ErrPaymentTermNotReached  = wrongState("payment-term-not-reached", "The order's payment term has not passed yet.")
	ErrPaymentReferenceReused = wrongState("payment-reference-reused", "This transaction reference was registered with another amount.")
)

// QuoteChangedError is ErrQuoteChanged with the quote that holds now: the frontend shows it
// and confirms again with its total.
type QuoteChangedError struct {
	Quote Quote
	// Repriced is set when the quote is of another day: the order must be priced again
	// (RepriceOrder) before the new quote can be confirmed.
	Repriced bool
}

func (e *QuoteChangedError) Error() string {
	return fmt.Sprintf("%s New total: %d cents, as of %s.", ErrQuoteChanged.Message, e.Quote.TotalCents, e.Quote.OrderDate)
}

func (e *QuoteChangedError) Unwrap() error { return ErrQuoteChanged }

// FieldError is a refusal about one field of the command: the HTTP layer names it.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr wraps a refusal with the field it is about and a detail.
func fieldErr(field string, err *Error, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
}
