package domain_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// The issue asks for at least 1,000 random sequences per property; rapid runs 100 unless
// told otherwise, so plain `go test` is told here. -rapid.checks or RAPID_CHECKS still win,
// and -short divides the count by five as rapid always does.
const propertyChecks = 1000

func TestMain(m *testing.M) {
	flag.Parse()
	_, fromEnv := os.LookupEnv("RAPID_CHECKS")
	if flag.Lookup("rapid.checks") != nil && !fromEnv && !flagWasSet("rapid.checks") {
		if err := flag.Set("rapid.checks", fmt.Sprint(propertyChecks)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

func flagWasSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// The fixed world every rule is told in: the default catalogue, and 10:00 in Rome on
// 15 March 2026.
var (
	cat     = domain.DefaultCatalogue()
	now     = time.Date(2026, 3, 15, 10, 0, 0, 0, domain.Rome)
	today   = domain.Date{Year: 2026, Month: time.March, Day: 15}
	yearOn  = domain.Date{Year: 2027, Month: time.March, Day: 15} // today + 1 year
	subID   = uuid.MustParse("5b0c1a52-0000-4000-8000-000000000001")
	orderID = uuid.MustParse("0d3e7f10-0000-4000-8000-000000000002")
	otherID = uuid.MustParse("0d3e7f10-0000-4000-8000-000000000003")
	holder  = domain.Holder{Name: "Rossi S.r.l.", Email: "amministrazione@rossi.example"}
)

func date(s string) domain.Date {
	d, err := domain.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// services is the subscription of most stories: a base service and three extra users that
// end before the new expiry, a preservation module that runs past it, and a reports module
// that has already expired.
func services() []domain.Service {
	return []domain.Service{
		{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2026-09-30")},
		{Kind: domain.KindUsers, Quantity: 3, ExpiresOn: date("2026-06-10")},
		{Kind: "conservation", Quantity: 1, ExpiresOn: date("2027-06-30")},
		{Kind: "reports", Quantity: 1, ExpiresOn: date("2026-01-31")},
	}
}

func subscriptionOpened(svcs ...domain.Service) domain.SubscriptionOpened {
	if len(svcs) == 0 {
		svcs = services()
	}
	return domain.SubscriptionOpened{
		SubscriptionID: subID, OwnerID: "customer-42", Holder: holder, Language: "it",
		Services: svcs, BaseGB: 1, OpenedOn: date("2025-10-01"),
	}
}

func subscriptionOf(events ...domain.Event) domain.Subscription {
	var s domain.Subscription
	for _, e := range events {
		s = domain.EvolveSubscription(s, e)
	}
	return s
}

func orderOf(events ...domain.Event) domain.Order {
	var o domain.Order
	for _, e := range events {
		o = domain.EvolveOrder(o, e)
	}
	return o
}

func mustQuote(t testing.TB, svcs []domain.Service, gb int, coTermination bool, on domain.Date) domain.Quote {
	t.Helper()
	q, err := cat.Quote(svcs, gb, coTermination, on)
	if err != nil {
		t.Fatalf("quote: %v", err)
	}
	return q
}

// The order's story so far, told as events.

func requested(svcs ...domain.Service) domain.SpaceIncreaseRequested {
	if len(svcs) == 0 {
		svcs = services()
	}
	q, err := cat.Quote(svcs, 1, true, today)
	if err != nil {
		panic(err)
	}
	return domain.SpaceIncreaseRequested{
		OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
		Language: "it", Services: svcs, Channel: "panel", Quote: q, RequestedAt: now,
	}
}

func checkoutStarted() domain.CheckoutStarted { return domain.CheckoutStarted{} }

func methodSelected(m string) domain.PaymentMethodSelected {
	return domain.PaymentMethodSelected{Method: m}
}

func allAccepted() domain.ConfirmOrder {
	return domain.ConfirmOrder{
		AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true,
		TermsVersion: "2026-01",
	}
}

func confirmed() domain.OrderConfirmed {
	return domain.OrderConfirmed{
		OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42",
		Quote: requested().Quote, PaymentMethod: domain.MethodBankTransfer,
		Recipient: domain.Recipient{Name: holder.Name, Email: holder.Email, Language: "it"},
		Acceptances: domain.Acceptances{
			GeneralConditions: true, UnfairTerms: true, Privacy: true, TermsVersion: "2026-01", AcceptedAt: now,
		},
		ConfirmedAt:              now,
		PayBy:                    date("2026-04-14"),
		ExpectedRegistrationDays: 5,
		// Sunday 15 March 2026 + 5 working days: Monday 16 to Friday 20.
		ExpectedRegistrationOn: date("2026-03-20"),
	}
}

// confirmedOrder is the order's story up to the binding confirmation (8540 cents due).
func confirmedOrder() []domain.Event {
	return []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodBankTransfer), confirmed()}
}

func paid(at time.Time) []domain.Event {
	q := requested().Quote
	return []domain.Event{
		domain.PaymentRegistered{AmountCents: q.TotalCents, Method: domain.MethodBankTransfer, Reference: "TRN-1", PaidCents: q.TotalCents, RegisteredAt: at},
		domain.OrderPaid{
			OrderID: orderID, SubscriptionID: subID, Quote: q, PaidCents: q.TotalCents, PaidAt: at,
			Recipient: domain.Recipient{Name: holder.Name, Email: holder.Email, Language: "it"},
		},
	}
}

func with(events []domain.Event, more ...domain.Event) []domain.Event {
	return append(append([]domain.Event(nil), events...), more...)
}

// Given, when, then.

type decision struct {
	t      *testing.T
	events []domain.Event
	err    error
}

type orderStory struct {
	t     *testing.T
	given []domain.Event
	at    time.Time
}

func givenOrder(t *testing.T, events ...domain.Event) *orderStory {
	t.Helper()
	return &orderStory{t: t, given: events, at: now}
}

// on moves the clock of the story.
func (s *orderStory) on(at time.Time) *orderStory { s.at = at; return s }

func (s *orderStory) when(cmd domain.OrderCommand) decision {
	s.t.Helper()
	state := orderOf(s.given...)
	events, err := domain.DecideOrder(cat, state, cmd, s.at)
	if !reflect.DeepEqual(state, orderOf(s.given...)) {
		s.t.Fatalf("DecideOrder changed the state it was given")
	}
	return decision{t: s.t, events: events, err: err}
}

type subscriptionStory struct {
	t     *testing.T
	given []domain.Event
	at    time.Time
}

func givenSubscription(t *testing.T, events ...domain.Event) *subscriptionStory {
	t.Helper()
	return &subscriptionStory{t: t, given: events, at: now}
}

func (s *subscriptionStory) on(at time.Time) *subscriptionStory { s.at = at; return s }

func (s *subscriptionStory) when(cmd domain.SubscriptionCommand) decision {
	s.t.Helper()
	state := subscriptionOf(s.given...)
	events, err := domain.DecideSubscription(cat, state, cmd, s.at)
	if !reflect.DeepEqual(state, subscriptionOf(s.given...)) {
		s.t.Fatalf("DecideSubscription changed the state it was given")
	}
	return decision{t: s.t, events: events, err: err}
}

// thenEvents: the command is accepted and causes exactly these events (none: it had
// already taken effect).
func (d decision) thenEvents(want ...domain.Event) []domain.Event {
	d.t.Helper()
	if d.err != nil {
		d.t.Fatalf("refused with %v, want events %s", d.err, show(want))
	}
	if len(want) == 0 && len(d.events) == 0 {
		return d.events
	}
	if !reflect.DeepEqual(d.events, want) {
		d.t.Fatalf("events:\n got %s\nwant %s", show(d.events), show(want))
	}
	return d.events
}

// thenError: the command is refused with that exported value, a message a frontend can
// show, and no event, so the state does not change.
func (d decision) thenError(want *domain.Error) {
	d.t.Helper()
	if d.err == nil {
		d.t.Fatalf("accepted with %s, want refusal %q", show(d.events), want.Code)
	}
	if !errors.Is(d.err, want) {
		d.t.Fatalf("refused with %q, want %q", d.err, want.Code)
	}
	if d.events != nil {
		d.t.Fatalf("refused, yet events %s", show(d.events))
	}
	got, ok := domain.AsError(d.err)
	if !ok || got.Message == "" || d.err.Error() == "" {
		d.t.Fatalf("refusal %v carries no message for the frontend", d.err)
	}
}

func show(events []domain.Event) string {
	if len(events) == 0 {
		return "[]"
	}
	s := ""
	for _, e := range events {
		s += fmt.Sprintf("\n    %T%+v", e, e)
	}
	return s
}

func isRefusal(err error, want *domain.Error) bool { return errors.Is(err, want) }
