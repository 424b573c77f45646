package domain

import "errors"

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
	ErrInvalidUsage        = invalid("invalid-usage", "Used space must be zero or more bytes.")
)

// Order refusals.
var (
	ErrUnknownOrder           = &Error{Code: "unknown-order", Kind: NotFound, Message: "The order does not exist."}
	ErrOrderExists            = wrongState("order-exists", "The order already exists.")
	ErrInvalidQuantity        = invalid("invalid-quantity", "The quantity of space must be a whole number of GB in the allowed range.")
	ErrInvalidChannel         = invalid("invalid-channel", "The channel must be panel, customer-area or app.")
	ErrUnknownPaymentMethod   = invalid("unknown-payment-method", "The payment method is not one we accept.")
	ErrPaymentMethodMissing   = invalid("payment-method-missing", "Choose a payment method before confirming.")
	ErrGeneralConditions      = invalid("general-conditions-not-accepted", "The general conditions of contract must be accepted.")
	ErrUnfairTerms            = invalid("unfair-terms-not-approved", "The unfair-terms clauses must be specifically approved.")
	ErrPrivacy                = invalid("privacy-not-acknowledged", "The privacy notice must be acknowledged.")
	ErrTermsVersionMissing    = invalid("terms-version-missing", "The version of the terms accepted is missing.")
	ErrInvalidAmount          = invalid("invalid-amount", "The amount must be more than zero cents.")
	ErrPaymentExceedsDue      = invalid("payment-exceeds-due", "The amount is more than what remains to be paid.")
	ErrPaymentReference       = invalid("payment-reference-missing", "The payment needs a transaction reference.")
	ErrNotInCart              = wrongState("order-not-in-cart", "The order is on the order form: modify it to change the cart.")
	ErrNotAtCheckout          = wrongState("order-not-at-checkout", "Proceed to the order form first.")
	ErrOrderAlreadyConfirmed  = wrongState("order-already-confirmed", "The order is already confirmed and can no longer change.")
	ErrOrderNotConfirmed      = wrongState("order-not-confirmed", "The order is not confirmed yet.")
	ErrOrderAlreadyPaid       = wrongState("order-already-paid", "The order is already paid.")
	ErrOrderCancelled         = wrongState("order-cancelled", "The order was cancelled.")
	ErrOrderExpired           = wrongState("order-expired", "The order expired unpaid.")
	ErrOrderPartiallyPaid     = wrongState("order-partially-paid", "Part of the order is paid: it can be neither cancelled nor expired, only paid in full.")
	ErrPaymentTermNotReached  = wrongState("payment-term-not-reached", "The order's payment term has not passed yet.")
	ErrPaymentReferenceReused = wrongState("payment-reference-reused", "This transaction reference was registered with another amount.")
)
