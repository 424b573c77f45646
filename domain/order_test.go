package domain_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/domain"
)

// RequestSpaceIncrease -> SpaceIncreaseRequested with the quote: new expiry = order date +
// 1 year; co-termination on.

func TestRequestSpaceIncreaseOpensTheCartWithCoTerminationOn(t *testing.T) {
	sub := subscriptionOf(subscriptionOpened())
	events := givenOrder(t).
		when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: 1, Channel: "app"}).
		thenEvents(domain.SpaceIncreaseRequested{
			OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
			Language: "it", Services: services(), Channel: "app",
			Quote: mustQuote(t, services(), 1, true, today), RequestedAt: now,
		})
	q := events[0].(domain.SpaceIncreaseRequested).Quote
	if !q.CoTermination || q.OrderDate != today || q.NewExpiry != yearOn {
		t.Fatalf("quote %+v: want co-termination on, ordered %s, expiring %s", q, today, yearOn)
	}
	if orderOf(events...).Status != domain.StatusCart {
		t.Fatalf("a requested order is in the cart")
	}
}

func TestExtraSpaceLastsOneYear(t *testing.T) {
	for _, c := range []struct{ ordered, expires string }{
		{"2026-03-15", "2027-03-15"},
		{"2026-01-31", "2027-01-31"},
		{"2026-12-31", "2027-12-31"},
		{"2027-03-01", "2028-03-01"},
	} {
		q := mustQuote(t, services(), 1, false, date(c.ordered))
		if q.NewExpiry != date(c.expires) || q.Lines[0].NewExpiry != date(c.expires) || q.Lines[0].Months != 12 {
			t.Errorf("ordered %s: space runs to %s (%d months), want %s (12)", c.ordered, q.NewExpiry, q.Lines[0].Months, c.expires)
		}
	}
}

func TestOrderedOn29FebruaryExpiresOn28February(t *testing.T) {
	q := mustQuote(t, services(), 1, false, date("2028-02-29"))
	if q.NewExpiry != date("2029-02-28") {
		t.Fatalf("ordered on 2028-02-29: expires %s, want 2029-02-28", q.NewExpiry)
	}
}

func TestOrderDateIsTheRomeCalendarDate(t *testing.T) {
	newYearsEveUTC := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC) // 00:30 on 1 January in Rome
	sub := subscriptionOf(subscriptionOpened(domain.Service{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2027-06-30")}))
	events := givenOrder(t).on(newYearsEveUTC).
		when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: 1, Channel: "panel"}).
		thenEvents(domain.SpaceIncreaseRequested{
			OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
			Language: "it", Services: sub.Services, Channel: "panel",
			Quote:       mustQuote(t, sub.Services, 1, true, date("2027-01-01")),
			RequestedAt: newYearsEveUTC,
		})
	q := events[0].(domain.SpaceIncreaseRequested).Quote
	if q.OrderDate != date("2027-01-01") || q.NewExpiry != date("2028-01-01") {
		t.Fatalf("ordered %s expiring %s, want 2027-01-01 expiring 2028-01-01", q.OrderDate, q.NewExpiry)
	}
}

func TestRequestingForAnUnknownSubscriptionIsRefused(t *testing.T) {
	givenOrder(t).
		when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: domain.Subscription{}, GB: 1, Channel: "panel"}).
		thenError(domain.ErrUnknownSubscription)
}

func TestRequestingForAClosedSubscriptionIsRefused(t *testing.T) {
	// The base service expired the day before: the subscription is closed.
	sub := subscriptionOf(subscriptionOpened(domain.Service{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2026-03-14")}))
	givenOrder(t).
		when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: 1, Channel: "panel"}).
		thenError(domain.ErrSubscriptionClosed)
	// Expiring today it is still open.
	sub = subscriptionOf(subscriptionOpened(domain.Service{Kind: domain.KindBase, Quantity: 1, ExpiresOn: today}))
	if _, err := domain.DecideOrder(cat, domain.Order{}, domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: 1, Channel: "panel"}, now); err != nil {
		t.Fatalf("base service expiring today: %v", err)
	}
}

func TestGBOutsideOneToAHundredIsRefused(t *testing.T) {
	sub := subscriptionOf(subscriptionOpened())
	for _, gb := range []int{0, -1, 101, 1 << 40} {
		givenOrder(t).
			when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: gb, Channel: "panel"}).
			thenError(domain.ErrInvalidQuantity)
		givenOrder(t, requested()).when(domain.ModifyOrder{GB: gb, CoTermination: true}).thenError(domain.ErrInvalidQuantity)
	}
	for _, gb := range []int{1, 100} {
		givenOrder(t, requested()).when(domain.ModifyOrder{GB: gb, CoTermination: true}).
			thenEvents(domain.OrderModified{GB: gb, CoTermination: true, Quote: mustQuote(t, services(), gb, true, today)})
	}
}

func TestUnknownChannelIsRefused(t *testing.T) {
	sub := subscriptionOf(subscriptionOpened())
	for _, ch := range []string{"", "web", "PANEL", "panel\r\n", "<script>"} {
		givenOrder(t).
			when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: sub, GB: 1, Channel: ch}).
			thenError(domain.ErrInvalidChannel)
	}
}

func TestRequestingTheSameOrderTwiceIsRefused(t *testing.T) {
	givenOrder(t, requested()).
		when(domain.RequestSpaceIncrease{OrderID: orderID, Subscription: subscriptionOf(subscriptionOpened()), GB: 1, Channel: "panel"}).
		thenError(domain.ErrOrderExists)
}

func TestCommandsToAnUnknownOrderAreRefused(t *testing.T) {
	for _, cmd := range []domain.OrderCommand{
		domain.ToggleCoTermination{}, domain.ProceedToCheckout{}, domain.SelectPaymentMethod{Method: "card"},
		domain.ModifyOrder{GB: 1}, allAccepted(), domain.RegisterPayment{AmountCents: 1, Method: "card", Reference: "x"},
		domain.CancelOrder{}, domain.ExpireOrder{},
	} {
		givenOrder(t).when(cmd).thenError(domain.ErrUnknownOrder)
	}
}

// ToggleCoTermination (on/off) -> CoTerminationToggled with the quote recomputed.

func TestToggleCoTerminationRecomputesTheQuote(t *testing.T) {
	off := mustQuote(t, services(), 1, false, today)
	givenOrder(t, requested()).when(domain.ToggleCoTermination{Enabled: false}).
		thenEvents(domain.CoTerminationToggled{Enabled: false, Quote: off})
	givenOrder(t, requested(), domain.CoTerminationToggled{Enabled: false, Quote: off}).
		when(domain.ToggleCoTermination{Enabled: true}).
		thenEvents(domain.CoTerminationToggled{Enabled: true, Quote: requested().Quote})
	// Asking for what is already so changes nothing.
	givenOrder(t, requested()).when(domain.ToggleCoTermination{Enabled: true}).thenEvents()
}

func TestToggleCoTerminationOnlyInTheCart(t *testing.T) {
	givenOrder(t, requested(), checkoutStarted()).when(domain.ToggleCoTermination{Enabled: false}).
		thenError(domain.ErrNotInCart)
}

// ProceedToCheckout -> CheckoutStarted; SelectPaymentMethod -> PaymentMethodSelected.

func TestProceedToCheckoutOpensTheOrderForm(t *testing.T) {
	events := givenOrder(t, requested()).when(domain.ProceedToCheckout{}).thenEvents(checkoutStarted())
	if orderOf(with([]domain.Event{requested()}, events...)...).Status != domain.StatusCheckout {
		t.Fatalf("after checkout the order is on the order form")
	}
	givenOrder(t, requested(), checkoutStarted()).when(domain.ProceedToCheckout{}).thenError(domain.ErrNotInCart)
}

func TestSelectPaymentMethodFromTheCatalogue(t *testing.T) {
	for _, m := range []string{domain.MethodCard, domain.MethodPayPal, domain.MethodBankTransfer} {
		givenOrder(t, requested(), checkoutStarted()).when(domain.SelectPaymentMethod{Method: m}).
			thenEvents(methodSelected(m))
	}
	givenOrder(t, requested()).when(domain.SelectPaymentMethod{Method: domain.MethodCard}).
		thenError(domain.ErrNotAtCheckout)
}

func TestUnknownPaymentMethodIsRefused(t *testing.T) {
	for _, m := range []string{"", "bitcoin", "Card", " card", "bank_transfer", "card\x00"} {
		givenOrder(t, requested(), checkoutStarted()).when(domain.SelectPaymentMethod{Method: m}).
			thenError(domain.ErrUnknownPaymentMethod)
	}
}

// ModifyOrder -> OrderModified; it voids what the order form had collected.

func TestModifyOrderGoesBackToTheCartWithANewQuote(t *testing.T) {
	q := mustQuote(t, services(), 3, false, today)
	events := givenOrder(t, requested(), checkoutStarted()).
		when(domain.ModifyOrder{GB: 3, CoTermination: false}).
		thenEvents(domain.OrderModified{GB: 3, CoTermination: false, Quote: q})
	o := orderOf(with([]domain.Event{requested(), checkoutStarted()}, events...)...)
	if o.Status != domain.StatusCart || o.Quote.GB != 3 || o.Quote.CoTermination {
		t.Fatalf("modified order %+v: want the cart with 3 GB and co-termination off", o)
	}
}

// Rule 1: a quote belongs to one Rome civil day. Modified three days later, the order is
// priced again from that day first, and the modification is priced on that day.
func TestModifyingTheOrderOnALaterDayPricesItAgain(t *testing.T) {
	later := now.Add(72 * time.Hour)
	day := domain.DateOf(later)
	d := givenOrder(t, requested(), checkoutStarted()).on(later).when(domain.ModifyOrder{GB: 2, CoTermination: true})
	d.thenEvents(
		domain.QuoteRepriced{PreviousOrderDate: today, PreviousTotalCents: requested().Quote.TotalCents, Quote: mustQuote(t, services(), 1, true, day), RepricedAt: later},
		domain.OrderModified{GB: 2, CoTermination: true, Quote: mustQuote(t, services(), 2, true, day)},
	)
}

func TestModifyingTheOrderVoidsThePaymentMethod(t *testing.T) {
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}
	events := givenOrder(t, given...).when(domain.ModifyOrder{GB: 1, CoTermination: true}).
		thenEvents(domain.OrderModified{GB: 1, CoTermination: true, Quote: requested().Quote})
	modified := with(given, events...)
	if m := orderOf(modified...).PaymentMethod; m != "" {
		t.Fatalf("payment method %q survived the modification", m)
	}
	// Back on the order form, confirming needs a method chosen again.
	givenOrder(t, with(modified, checkoutStarted())...).when(allAccepted()).
		thenError(domain.ErrPaymentMethodMissing)
}

// ConfirmOrder -> OrderConfirmed, refused unless a payment method is chosen and all three
// acceptances are true.

func TestConfirmedOrderCarriesTheBindingQuote(t *testing.T) {
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodBankTransfer)}
	events := givenOrder(t, given...).when(allAccepted()).thenEvents(confirmed())
	c := events[0].(domain.OrderConfirmed)
	if c.Quote.TotalCents != 8540 || !c.Quote.Adds() {
		t.Fatalf("confirmed quote %+v: want 8540 cents that add up", c.Quote)
	}
	o := orderOf(with(given, events...)...)
	if o.Status != domain.StatusConfirmed || o.DueCents() != 8540 || o.PayBy != date("2026-04-14") {
		t.Fatalf("confirmed order %+v", o)
	}
}

func TestConfirmRecordsTheTrimmedTermsVersion(t *testing.T) {
	cmd := allAccepted()
	cmd.TermsVersion = "  2026-01 \t"
	givenOrder(t, requested(), checkoutStarted(), methodSelected(domain.MethodBankTransfer)).when(cmd).
		thenEvents(confirmed())
}

func TestConfirmRequiresAllThreeAcceptances(t *testing.T) {
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}
	t.Run("general conditions", func(t *testing.T) {
		cmd := allAccepted()
		cmd.AcceptGeneralConditions = false
		givenOrder(t, given...).when(cmd).thenError(domain.ErrGeneralConditions)
	})
	t.Run("unfair-terms clauses", func(t *testing.T) {
		cmd := allAccepted()
		cmd.ApproveUnfairTerms = false
		givenOrder(t, given...).when(cmd).thenError(domain.ErrUnfairTerms)
	})
	t.Run("privacy notice", func(t *testing.T) {
		cmd := allAccepted()
		cmd.AcknowledgePrivacy = false
		givenOrder(t, given...).when(cmd).thenError(domain.ErrPrivacy)
	})
	t.Run("none", func(t *testing.T) {
		givenOrder(t, given...).when(domain.ConfirmOrder{TermsVersion: "2026-01"}).thenError(domain.ErrGeneralConditions)
	})
}

func TestConfirmRequiresTheTermsVersion(t *testing.T) {
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}
	for _, v := range []string{"", "   ", strings.Repeat("v", 129), "\xff\xfe", "2026-01\r\nBcc: x@evil.example"} {
		cmd := allAccepted()
		cmd.TermsVersion = v
		givenOrder(t, given...).when(cmd).thenError(domain.ErrTermsVersionMissing)
	}
}

func TestConfirmRequiresAPaymentMethod(t *testing.T) {
	givenOrder(t, requested(), checkoutStarted()).when(allAccepted()).thenError(domain.ErrPaymentMethodMissing)
}

func TestConfirmOnlyFromTheOrderForm(t *testing.T) {
	givenOrder(t, requested()).when(allAccepted()).thenError(domain.ErrNotAtCheckout)
}

func TestConfirmTwiceIsRefused(t *testing.T) {
	givenOrder(t, confirmedOrder()...).when(allAccepted()).thenError(domain.ErrOrderAlreadyConfirmed)
}

func TestNoChangeAfterConfirmationExceptPaymentCancellationExpiry(t *testing.T) {
	refused := []domain.OrderCommand{
		domain.ToggleCoTermination{Enabled: false},
		domain.ToggleCoTermination{Enabled: true},
		domain.ProceedToCheckout{},
		domain.SelectPaymentMethod{Method: domain.MethodCard},
		domain.ModifyOrder{GB: 2, CoTermination: true},
		domain.ModifyOrder{GB: 1, CoTermination: true},
		allAccepted(),
	}
	for _, cmd := range refused {
		givenOrder(t, confirmedOrder()...).when(cmd).thenError(domain.ErrOrderAlreadyConfirmed)
	}
	// What may still happen: payment, cancellation, expiry.
	givenOrder(t, confirmedOrder()...).when(domain.RegisterPayment{AmountCents: 100, Method: domain.MethodBankTransfer, Reference: "TRN-1"}).
		thenEvents(domain.PaymentRegistered{AmountCents: 100, Method: domain.MethodBankTransfer, Reference: "TRN-1", PaidCents: 100, RegisteredAt: now})
	givenOrder(t, confirmedOrder()...).when(domain.CancelOrder{Reason: "changed my mind"}).
		thenEvents(domain.OrderCancelled{Reason: "changed my mind", CancelledAt: now})
	afterTerm := time.Date(2026, 4, 15, 0, 0, 0, 0, domain.Rome)
	givenOrder(t, confirmedOrder()...).on(afterTerm).when(domain.ExpireOrder{}).
		thenEvents(domain.OrderExpired{ExpiredAt: afterTerm})
}

func TestNoCartCommandAfterTheOrderEnds(t *testing.T) {
	ends := []struct {
		name   string
		events []domain.Event
		err    *domain.Error
	}{
		{"paid", with(confirmedOrder(), paid(now)...), domain.ErrOrderAlreadyPaid},
		{"cancelled", []domain.Event{requested(), domain.OrderCancelled{CancelledAt: now}}, domain.ErrOrderCancelled},
		{"expired", with(confirmedOrder(), domain.OrderExpired{ExpiredAt: now}), domain.ErrOrderExpired},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			for _, cmd := range []domain.OrderCommand{
				domain.ToggleCoTermination{Enabled: false}, domain.ProceedToCheckout{},
				domain.SelectPaymentMethod{Method: domain.MethodCard}, domain.ModifyOrder{GB: 1, CoTermination: true},
				allAccepted(), domain.CancelOrder{}, domain.ExpireOrder{}, domain.AbandonOrder{}, domain.RepriceOrder{},
			} {
				givenOrder(t, end.events...).on(now.AddDate(1, 0, 0)).when(cmd).thenError(end.err)
			}
		})
	}
}

// RegisterPayment -> PaymentRegistered; when the total is covered -> OrderPaid.

func TestPaymentCoveringTheTotalPaysTheOrder(t *testing.T) {
	at := now.Add(time.Hour)
	events := givenOrder(t, confirmedOrder()...).on(at).
		when(domain.RegisterPayment{AmountCents: 8540, Method: domain.MethodBankTransfer, Reference: " TRN-1 "}).
		thenEvents(paid(at)...)
	if o := orderOf(with(confirmedOrder(), events...)...); o.Status != domain.StatusPaid || o.DueCents() != 0 {
		t.Fatalf("order %+v: want paid with nothing due", o)
	}
}

func TestOrderPaidCarriesTheConfirmedQuoteAndRecipient(t *testing.T) {
	events := givenOrder(t, confirmedOrder()...).
		when(domain.RegisterPayment{AmountCents: 8540, Method: domain.MethodCard, Reference: "A"}).thenEvents(
		domain.PaymentRegistered{AmountCents: 8540, Method: domain.MethodCard, Reference: "A", PaidCents: 8540, RegisteredAt: now},
		domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, Quote: confirmed().Quote, Recipient: confirmed().Recipient, PaidCents: 8540, PaidAt: now},
	)
	if events[1].(domain.OrderPaid).Quote.TotalCents != confirmed().Quote.TotalCents {
		t.Fatal("what is charged is not what was confirmed")
	}
}

func TestPartialPaymentsAddUp(t *testing.T) {
	given := confirmedOrder()
	given = with(given, givenOrder(t, given...).
		when(domain.RegisterPayment{AmountCents: 4000, Method: domain.MethodBankTransfer, Reference: "TRN-1"}).
		thenEvents(domain.PaymentRegistered{AmountCents: 4000, Method: domain.MethodBankTransfer, Reference: "TRN-1", PaidCents: 4000, RegisteredAt: now})...)
	given = with(given, givenOrder(t, given...).
		when(domain.RegisterPayment{AmountCents: 4000, Method: domain.MethodCard, Reference: "TRN-2"}).
		thenEvents(domain.PaymentRegistered{AmountCents: 4000, Method: domain.MethodCard, Reference: "TRN-2", PaidCents: 8000, RegisteredAt: now})...)
	if o := orderOf(given...); o.Status != domain.StatusConfirmed || o.DueCents() != 540 {
		t.Fatalf("after 8000 of 8540 cents: %+v", o)
	}
	givenOrder(t, given...).
		when(domain.RegisterPayment{AmountCents: 540, Method: domain.MethodCard, Reference: "TRN-3"}).
		thenEvents(
			domain.PaymentRegistered{AmountCents: 540, Method: domain.MethodCard, Reference: "TRN-3", PaidCents: 8540, RegisteredAt: now},
			domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, Quote: confirmed().Quote, Recipient: confirmed().Recipient, PaidCents: 8540, PaidAt: now},
		)
}

// Money that arrives is never refused: an excess over the total is recorded as a credit
// due, beside the payment that covers the order.
func TestPaymentAboveWhatIsDueBecomesACreditDue(t *testing.T) {
	q := confirmed().Quote
	givenOrder(t, confirmedOrder()...).
		when(domain.RegisterPayment{AmountCents: 8541, Method: domain.MethodCard, Reference: "A"}).
		thenEvents(
			domain.PaymentRegistered{AmountCents: 8541, Method: domain.MethodCard, Reference: "A", PaidCents: 8540, RegisteredAt: now},
			domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, Quote: q, Recipient: confirmed().Recipient, PaidCents: 8540, PaidAt: now, ExcessCents: 1},
			credit(1, domain.CreditExcess, "A"),
		)
	givenOrder(t, with(confirmedOrder(), domain.PaymentRegistered{AmountCents: 8000, Method: "card", Reference: "A", PaidCents: 8000, RegisteredAt: now})...).
		when(domain.RegisterPayment{AmountCents: 600, Method: domain.MethodCard, Reference: "B"}).
		thenEvents(
			domain.PaymentRegistered{AmountCents: 600, Method: domain.MethodCard, Reference: "B", PaidCents: 8540, RegisteredAt: now},
			domain.OrderPaid{OrderID: orderID, SubscriptionID: subID, Quote: q, Recipient: confirmed().Recipient, PaidCents: 8540, PaidAt: now, ExcessCents: 60},
			credit(60, domain.CreditExcess, "B"),
		)
}

func credit(cents int64, reason, ref string) domain.CreditDue {
	return domain.CreditDue{
		OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
		AmountCents: cents, Reason: reason, Reference: ref, RecordedAt: now,
	}
}

func TestTheSamePaymentReferenceCountsOnce(t *testing.T) {
	first := domain.PaymentRegistered{AmountCents: 4000, Method: domain.MethodCard, Reference: "TRN-1", PaidCents: 4000, RegisteredAt: now}
	given := with(confirmedOrder(), first)
	// A gateway retry of the same transaction is recognised and counts nothing more.
	givenOrder(t, given...).when(domain.RegisterPayment{AmountCents: 4000, Method: domain.MethodCard, Reference: "TRN-1"}).thenEvents()
	givenOrder(t, given...).when(domain.RegisterPayment{AmountCents: 4000, Method: domain.MethodCard, Reference: "  TRN-1\t"}).thenEvents()
	// The same reference with another amount is not a retry: refused.
	givenOrder(t, given...).when(domain.RegisterPayment{AmountCents: 4540, Method: domain.MethodCard, Reference: "TRN-1"}).
		thenError(domain.ErrPaymentReferenceReused)
	// Once paid, the retry of the paying transaction is still recognised.
	paidOrder := with(confirmedOrder(), paid(now)...)
	givenOrder(t, paidOrder...).when(domain.RegisterPayment{AmountCents: 8540, Method: domain.MethodBankTransfer, Reference: "TRN-1"}).thenEvents()
}

func TestAmountOfZeroOrBelowIsRefused(t *testing.T) {
	for _, amount := range []int64{0, -1, -8540} {
		givenOrder(t, confirmedOrder()...).
			when(domain.RegisterPayment{AmountCents: amount, Method: domain.MethodCard, Reference: "TRN-9"}).
			thenError(domain.ErrInvalidAmount)
	}
}

func TestPaymentNeedsATransactionReference(t *testing.T) {
	for _, ref := range []string{"", "   ", strings.Repeat("r", 129), "TRN\r\nX-Injected: 1", "TRN\x00", "\xff"} {
		givenOrder(t, confirmedOrder()...).
			when(domain.RegisterPayment{AmountCents: 100, Method: domain.MethodCard, Reference: ref}).
			thenError(domain.ErrPaymentReference)
	}
}

func TestPaymentWithAnUnknownMethodIsRefused(t *testing.T) {
	givenOrder(t, confirmedOrder()...).
		when(domain.RegisterPayment{AmountCents: 100, Method: "cash", Reference: "TRN-1"}).
		thenError(domain.ErrUnknownPaymentMethod)
}

// A payment on an order that cannot take it (not confirmed, ended, already paid) is
// recorded, grants nothing, and is owed back.
func TestPaymentOnAnOrderThatCannotTakeItBecomesACreditDue(t *testing.T) {
	pay := domain.RegisterPayment{AmountCents: 100, Method: domain.MethodCard, Reference: "TRN-9"}
	for _, c := range []struct {
		given  []domain.Event
		reason string
	}{
		{[]domain.Event{requested()}, domain.CreditOrderNotConfirmed},
		{[]domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}, domain.CreditOrderNotConfirmed},
		{with(confirmedOrder(), domain.OrderCancelled{CancelledAt: now}), domain.CreditOrderCancelled},
		{with(confirmedOrder(), domain.OrderExpired{ExpiredAt: now}), domain.CreditOrderExpired},
		{with(confirmedOrder(), paid(now)...), domain.CreditOrderPaid},
		{[]domain.Event{requested(), domain.OrderAbandoned{LastActiveOn: today, AbandonedAt: now}}, domain.CreditOrderAbandoned},
	} {
		paidBefore := orderOf(c.given...).PaidCents
		events := givenOrder(t, c.given...).when(pay).thenEvents(
			domain.PaymentRegistered{AmountCents: 100, Method: domain.MethodCard, Reference: "TRN-9", PaidCents: paidBefore, RegisteredAt: now},
			credit(100, c.reason, "TRN-9"),
		)
		after := orderOf(with(c.given, events...)...)
		if after.Status != orderOf(c.given...).Status || after.CreditCents != 100 || after.PaidCents != paidBefore {
			t.Errorf("%s: the payment changed the order: %+v", c.reason, after)
		}
	}
}

// CancelOrder -> OrderCancelled; unpaid confirmed orders past the term -> OrderExpired.

func TestCancelOrderEndsTheOrder(t *testing.T) {
	for _, given := range [][]domain.Event{
		{requested()},
		{requested(), checkoutStarted()},
		confirmedOrder(),
	} {
		givenOrder(t, given...).when(domain.CancelOrder{Reason: "  not needed  "}).
			thenEvents(domain.OrderCancelled{Reason: "not needed", CancelledAt: now})
	}
}

func TestCancelReasonIsClipped(t *testing.T) {
	givenOrder(t, requested()).when(domain.CancelOrder{Reason: strings.Repeat("é", 500) + "\xff"}).thenEvents(
		domain.OrderCancelled{Reason: strings.Repeat("é", 200), CancelledAt: now})
}

func TestCancellingAPartlyPaidOrderIsAnOperatorsAndCreditsWhatWasPaid(t *testing.T) {
	partly := with(confirmedOrder(), domain.PaymentRegistered{AmountCents: 1, Method: "card", Reference: "A", PaidCents: 1, RegisteredAt: now})
	givenOrder(t, partly...).when(domain.CancelOrder{}).thenError(domain.ErrOrderPartiallyPaid)
	givenOrder(t, partly...).when(domain.CancelOrder{Reason: "customer asked", ByOperator: true}).thenEvents(
		domain.OrderCancelled{Reason: "customer asked", CancelledAt: now},
		credit(1, domain.CreditCancelledPartlyPaid, ""),
	)
}

func TestUnpaidOrderExpiresAfterThePaymentTerm(t *testing.T) {
	// Confirmed on 15 March with a 30-day term: payable until 14 April, expired from 15 April.
	dayAfterTerm := time.Date(2026, 4, 15, 0, 0, 1, 0, domain.Rome)
	givenOrder(t, confirmedOrder()...).on(dayAfterTerm).when(domain.ExpireOrder{}).
		thenEvents(domain.OrderExpired{ExpiredAt: dayAfterTerm})
}

// Money received is never kept without a grant: a partly paid order is not expired.
func TestPartlyPaidOrderDoesNotExpire(t *testing.T) {
	dayAfterTerm := time.Date(2026, 4, 15, 0, 0, 1, 0, domain.Rome)
	partly := append(confirmedOrder(), domain.PaymentRegistered{AmountCents: 100, Method: "bank-transfer", Reference: "CRO-1", PaidCents: 100, RegisteredAt: now})
	givenOrder(t, partly...).on(dayAfterTerm).when(domain.ExpireOrder{}).thenError(domain.ErrOrderPartiallyPaid)
}

func TestUnpaidOrderDoesNotExpireBeforeThePaymentTerm(t *testing.T) {
	for _, at := range []time.Time{
		now,
		time.Date(2026, 4, 14, 23, 59, 59, 0, domain.Rome),
		time.Date(2026, 4, 14, 22, 30, 0, 0, time.UTC), // 00:30 on 15 April in Rome: past the term
	} {
		d := givenOrder(t, confirmedOrder()...).on(at).when(domain.ExpireOrder{})
		if domain.DateOf(at).After(date("2026-04-14")) {
			d.thenEvents(domain.OrderExpired{ExpiredAt: at})
			continue
		}
		d.thenError(domain.ErrPaymentTermNotReached)
	}
}

func TestOnlyConfirmedOrdersExpire(t *testing.T) {
	late := now.AddDate(1, 0, 0)
	givenOrder(t, requested()).on(late).when(domain.ExpireOrder{}).thenError(domain.ErrOrderNotConfirmed)
	givenOrder(t, requested(), checkoutStarted()).on(late).when(domain.ExpireOrder{}).thenError(domain.ErrOrderNotConfirmed)
}

func TestOrderInProgressUntilPaidCancelledOrExpired(t *testing.T) {
	for status, want := range map[domain.OrderStatus]bool{
		domain.StatusNone: false, domain.StatusCart: true, domain.StatusCheckout: true, domain.StatusConfirmed: true,
		domain.StatusPaid: false, domain.StatusCancelled: false, domain.StatusExpired: false,
	} {
		if status.InProgress() != want {
			t.Errorf("%q in progress: %v, want %v", status, status.InProgress(), want)
		}
	}
}

func TestModifyingTheOrderVoidsAnyAcceptance(t *testing.T) {
	// Acceptances are given with the confirmation itself, so none survives a modification:
	// back on the order form every one of them is asked again.
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard),
		domain.OrderModified{GB: 2, CoTermination: true, Quote: mustQuote(t, services(), 2, true, today)},
		checkoutStarted(), methodSelected(domain.MethodCard)}
	if a := orderOf(given...).Acceptances; a != (domain.Acceptances{}) {
		t.Fatalf("acceptances %+v survived the modification", a)
	}
	cmd := allAccepted()
	cmd.ApproveUnfairTerms = false
	givenOrder(t, given...).when(cmd).thenError(domain.ErrUnfairTerms)
}

// The quote the customer confirmed is what is charged and what is granted, even when the
// catalogue's prices change in between.
func TestTheConfirmedQuoteIsChargedAndGranted(t *testing.T) {
	dearer, err := domain.ParseCatalogue(editCatalogue(t, func(m map[string]any) {
		m["vatPercent"] = 25
		m["space"].(map[string]any)["pricePerGBYearCents"] = 9900
	}))
	if err != nil {
		t.Fatal(err)
	}
	q := confirmed().Quote
	events, err := domain.DecideOrder(dearer, orderOf(confirmedOrder()...),
		domain.RegisterPayment{AmountCents: q.TotalCents, Method: domain.MethodCard, Reference: "TRN-1"}, now)
	if err != nil || len(events) != 2 {
		t.Fatalf("paying the confirmed total under new prices: %v %v", show(events), err)
	}
	paidEvent := events[1].(domain.OrderPaid)
	if !reflect.DeepEqual(paidEvent.Quote, q) || paidEvent.PaidCents != 8540 {
		t.Fatalf("charged %+v, confirmed %+v", paidEvent.Quote, q)
	}
	granted, err := domain.DecideSubscription(dearer, subscriptionOf(subscriptionOpened()),
		domain.ApplyPurchase{OrderID: orderID, Quote: paidEvent.Quote, PaidAt: paidEvent.PaidAt}, now)
	if err != nil {
		t.Fatal(err)
	}
	added := granted[0].(domain.SpaceAdded)
	extended := granted[1].(domain.ServicesExtended)
	if added.GB != q.GB || added.ValidUntil != q.NewExpiry || len(extended.Services) != len(q.ExtendedServices()) {
		t.Fatalf("granted %+v %+v, confirmed %+v", added, extended, q)
	}
	for i, l := range q.ExtendedServices() {
		if x := extended.Services[i]; x.Kind != l.Kind || x.Months != l.Months || x.NewExpiry != l.NewExpiry || x.Quantity != l.Quantity {
			t.Errorf("extended %+v, confirmed %+v", x, l)
		}
	}
}

func TestCancelReasonLosesControlCharacters(t *testing.T) {
	o := domain.Order{Status: domain.StatusCart}
	events, err := domain.DecideOrder(domain.DefaultCatalogue(), o, domain.CancelOrder{Reason: "too\r\nexpensive\x00"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := events[0].(domain.OrderCancelled).Reason; got != "too  expensive" {
		t.Fatalf("reason %q, want control characters turned to spaces", got)
	}
}
