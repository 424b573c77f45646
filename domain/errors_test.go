package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/domain"
)

// Every refusal is its own exported value, usable with errors.Is, with a stable code and a
// message a frontend can show as it is.
var refusals = map[string]*domain.Error{
	"ErrUnknownSubscription":    domain.ErrUnknownSubscription,
	"ErrSubscriptionExists":     domain.ErrSubscriptionExists,
	"ErrSubscriptionClosed":     domain.ErrSubscriptionClosed,
	"ErrOrderInProgress":        domain.ErrOrderInProgress,
	"ErrInvalidOwner":           domain.ErrInvalidOwner,
	"ErrInvalidHolder":          domain.ErrInvalidHolder,
	"ErrInvalidLanguage":        domain.ErrInvalidLanguage,
	"ErrInvalidServices":        domain.ErrInvalidServices,
	"ErrUnknownServiceKind":     domain.ErrUnknownServiceKind,
	"ErrInvalidUsage":           domain.ErrInvalidUsage,
	"ErrUnknownOrder":           domain.ErrUnknownOrder,
	"ErrOrderExists":            domain.ErrOrderExists,
	"ErrInvalidQuantity":        domain.ErrInvalidQuantity,
	"ErrInvalidChannel":         domain.ErrInvalidChannel,
	"ErrUnknownPaymentMethod":   domain.ErrUnknownPaymentMethod,
	"ErrPaymentMethodMissing":   domain.ErrPaymentMethodMissing,
	"ErrGeneralConditions":      domain.ErrGeneralConditions,
	"ErrUnfairTerms":            domain.ErrUnfairTerms,
	"ErrPrivacy":                domain.ErrPrivacy,
	"ErrTermsVersionMissing":    domain.ErrTermsVersionMissing,
	"ErrInvalidAmount":          domain.ErrInvalidAmount,
	"ErrAmountOutOfRange":       domain.ErrAmountOutOfRange,
	"ErrSubscriptionNotActive":  domain.ErrSubscriptionNotActive,
	"ErrOrderAbandoned":         domain.ErrOrderAbandoned,
	"ErrOrderOverdue":           domain.ErrOrderOverdue,
	"ErrQuoteChanged":           domain.ErrQuoteChanged,
	"ErrNothingToSweep":         domain.ErrNothingToSweep,
	"ErrCartNotAbandoned":       domain.ErrCartNotAbandoned,
	"ErrPaymentReference":       domain.ErrPaymentReference,
	"ErrNotInCart":              domain.ErrNotInCart,
	"ErrNotAtCheckout":          domain.ErrNotAtCheckout,
	"ErrOrderAlreadyConfirmed":  domain.ErrOrderAlreadyConfirmed,
	"ErrOrderNotConfirmed":      domain.ErrOrderNotConfirmed,
	"ErrOrderAlreadyPaid":       domain.ErrOrderAlreadyPaid,
	"ErrOrderCancelled":         domain.ErrOrderCancelled,
	"ErrOrderExpired":           domain.ErrOrderExpired,
	"ErrOrderPartiallyPaid":     domain.ErrOrderPartiallyPaid,
	"ErrPaymentTermNotReached":  domain.ErrPaymentTermNotReached,
	"ErrPaymentReferenceReused": domain.ErrPaymentReferenceReused,
}

func TestEveryRefusalHasAStableCodeAndAMessageAFrontendCanShow(t *testing.T) {
	code := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := map[string]string{}
	for name, e := range refusals {
		if !code.MatchString(e.Code) {
			t.Errorf("%s: code %q is not kebab-case", name, e.Code)
		}
		if other, dup := seen[e.Code]; dup {
			t.Errorf("%s and %s share the code %q", name, other, e.Code)
		}
		seen[e.Code] = name
		if e.Kind < domain.Invalid || e.Kind > domain.NotFound {
			t.Errorf("%s: no kind", name)
		}
		if e.Message == "" || !strings.HasSuffix(e.Message, ".") || strings.ToUpper(e.Message[:1]) != e.Message[:1] {
			t.Errorf("%s: message %q is not a sentence", name, e.Message)
		}
		if e.Error() != e.Message {
			t.Errorf("%s: Error() %q, want the message", name, e.Error())
		}
	}
}

func TestRefusalsAreFoundThroughWrapping(t *testing.T) {
	for name, e := range refusals {
		wrapped := fmt.Errorf("handle command: %w", fmt.Errorf("%w: detail", e))
		got, ok := domain.AsError(wrapped)
		if !errors.Is(wrapped, e) || !ok || got != e {
			t.Errorf("%s is lost when wrapped", name)
		}
		for other, o := range refusals {
			if other != name && errors.Is(wrapped, o) {
				t.Errorf("%s matches %s", name, other)
			}
		}
	}
	if _, ok := domain.AsError(errors.New("disk full")); ok {
		t.Error("a plain error is not a refusal")
	}
}

func TestRefusalsOfTheRightKind(t *testing.T) {
	for _, c := range []struct {
		e    *domain.Error
		kind domain.ErrorKind
	}{
		{domain.ErrUnknownSubscription, domain.NotFound},
		{domain.ErrUnknownOrder, domain.NotFound},
		{domain.ErrInvalidQuantity, domain.Invalid},
		{domain.ErrInvalidAmount, domain.Invalid},
		{domain.ErrUnknownPaymentMethod, domain.Invalid},
		{domain.ErrGeneralConditions, domain.Invalid},
		{domain.ErrOrderAlreadyConfirmed, domain.WrongState},
		{domain.ErrOrderCancelled, domain.WrongState},
		{domain.ErrSubscriptionClosed, domain.WrongState},
		{domain.ErrOrderInProgress, domain.WrongState},
	} {
		if c.e.Kind != c.kind {
			t.Errorf("%s: kind %d, want %d", c.e.Code, c.e.Kind, c.kind)
		}
	}
}

// Events have stable names in the log, never the Go type's name.

func TestEveryEventHasOneStableName(t *testing.T) {
	names, types := map[string]bool{}, map[reflect.Type]bool{}
	for _, et := range domain.EventTypes() {
		typ := reflect.TypeOf(et.Zero)
		if names[et.Name] || types[typ] || et.Version < 1 || et.Name == "" {
			t.Errorf("event type %+v: duplicate or unversioned", et)
		}
		names[et.Name], types[typ] = true, true
	}
	if len(names) != 23 {
		t.Errorf("%d event types, want the 23 of the contract", len(names))
	}
}
