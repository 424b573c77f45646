package domain_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/einvoice/spaceorders/domain"
)

// The rules of docs/RULES.md, each as a property over generated calendars, services and
// payment histories (the world of properties_test.go), and as the examples the document
// gives.

// Rule 1: a quote belongs to one Rome civil day.

func TestPropertyAQuoteBelongsToOneRomeDay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).quotesAreOfTheirDay) })
}

func (w *world) quotesAreOfTheirDay(t *rapid.T) {
	for id, o := range w.orders {
		for i, e := range o.events {
			day := domain.DateOf(o.at[i])
			switch e := e.(type) {
			case domain.CoTerminationToggled, domain.CheckoutStarted, domain.PaymentMethodSelected,
				domain.OrderModified, domain.QuoteRepriced, domain.SpaceIncreaseRequested:
				if got := o.states[i].Quote.OrderDate; got != day {
					t.Fatalf("order %s: %T on %s left a quote of %s", id, e, day, got)
				}
			case domain.OrderConfirmed:
				if e.Quote.OrderDate != day || e.Quote.OrderDate != domain.DateOf(e.ConfirmedAt) {
					t.Fatalf("order %s: confirmed on %s a quote of %s", id, day, e.Quote.OrderDate)
				}
			}
		}
	}
}

func TestConfirmingOnALaterDayIsRefusedWithTheNewQuote(t *testing.T) {
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}
	later := now.Add(100 * 24 * time.Hour)
	_, err := domain.DecideOrder(cat, orderOf(given...), allAccepted(), later)
	var changed *domain.QuoteChangedError
	if !errors.As(err, &changed) || !errors.Is(err, domain.ErrQuoteChanged) || !changed.Repriced {
		t.Fatalf("confirm 100 days later: %v, want quote-changed with a new quote", err)
	}
	want := mustQuote(t, services(), 1, true, domain.DateOf(later))
	if changed.Quote.TotalCents != want.TotalCents || changed.Quote.OrderDate != domain.DateOf(later) {
		t.Fatalf("new quote %+v, want %+v", changed.Quote, want)
	}
	// Priced again (as the handler records it), the same day's confirmation goes through
	// with the new total, and is refused with another.
	events := givenOrder(t, given...).on(later).when(domain.RepriceOrder{}).thenEvents(domain.QuoteRepriced{
		PreviousOrderDate: today, PreviousTotalCents: requested().Quote.TotalCents, Quote: want, RepricedAt: later,
	})
	repriced := with(given, events...)
	stale := requested().Quote.TotalCents
	c := allAccepted()
	c.ExpectedTotalCents = &stale
	if stale != want.TotalCents {
		givenOrder(t, repriced...).on(later).when(c).thenError(domain.ErrQuoteChanged)
	}
	c.ExpectedTotalCents = &want.TotalCents
	confirmed, err := domain.DecideOrder(cat, orderOf(repriced...), c, later)
	if err != nil || len(confirmed) != 1 || confirmed[0].(domain.OrderConfirmed).Quote.TotalCents != want.TotalCents {
		t.Fatalf("confirmed %s", show(confirmed))
	}
}

// Rule 2: only an active subscription buys.

func TestPropertyOnlyAnActiveSubscriptionBuys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).onlyActiveBuys) })
}

func (w *world) onlyActiveBuys(t *rapid.T) {
	for id, o := range w.orders {
		for i, e := range o.events {
			day := domain.DateOf(o.at[i])
			switch e.(type) {
			case domain.OrderConfirmed, domain.OrderPaid:
				if !o.states[i].SubscriptionActive(day) {
					t.Fatalf("order %s: %T on %s, the base service ended %s", id, e, day, o.states[i].Services[0].ExpiresOn)
				}
			case domain.PaymentRegistered:
				before := domain.Order{}
				if i > 0 {
					before = o.states[i-1]
				}
				if before.Status == domain.StatusConfirmed && !before.SubscriptionActive(day) {
					// The money is recorded and owed back, and nothing is paid by it.
					c, ok := o.events[i+1].(domain.CreditDue)
					if !ok || c.Reason != domain.CreditSubscriptionNotActive || o.states[i].PaidCents != before.PaidCents {
						t.Fatalf("order %s: payment on %s for an ended subscription not credited: %s", id, day, show(o.events[i:]))
					}
				}
			}
		}
	}
}

func TestAnEndedSubscriptionCannotConfirmAndItsPaymentIsACredit(t *testing.T) {
	// The base service ends on 30 September 2026.
	afterEnd := time.Date(2026, 10, 1, 9, 0, 0, 0, domain.Rome)
	given := []domain.Event{requested(), checkoutStarted(), methodSelected(domain.MethodCard)}
	givenOrder(t, given...).on(afterEnd).when(allAccepted()).thenError(domain.ErrSubscriptionNotActive)
	givenOrder(t, given...).on(afterEnd).when(domain.ProceedToCheckout{}).thenError(domain.ErrNotInCart)
	givenOrder(t, requested()).on(afterEnd).when(domain.ProceedToCheckout{}).thenError(domain.ErrSubscriptionNotActive)
	events := givenOrder(t, confirmedOrder()...).on(afterEnd).
		when(domain.RegisterPayment{AmountCents: 8540, Method: domain.MethodCard, Reference: "LATE"}).thenEvents(
		domain.PaymentRegistered{AmountCents: 8540, Method: domain.MethodCard, Reference: "LATE", PaidCents: 0, RegisteredAt: afterEnd},
		domain.CreditDue{OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
			AmountCents: 8540, Reason: domain.CreditSubscriptionNotActive, Reference: "LATE", RecordedAt: afterEnd},
	)
	if o := orderOf(with(confirmedOrder(), events...)...); o.Status != domain.StatusConfirmed || o.CreditCents != 8540 {
		t.Fatalf("after a payment for an ended subscription: %+v", o)
	}
}

// Rule 3: abandoned carts end.

func TestPropertyAbandonedCartsEnd(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).abandonedOnlyWhenUntouched) })
}

func (w *world) abandonedOnlyWhenUntouched(t *rapid.T) {
	w.oneOrderInProgress(t)
	for id, o := range w.orders {
		for i, e := range o.events {
			a, ok := e.(domain.OrderAbandoned)
			if !ok {
				continue
			}
			before := o.states[i-1]
			day := domain.DateOf(o.at[i])
			if a.LastActiveOn != before.Quote.OrderDate || day.Before(a.LastActiveOn.AddDays(cat.AbandonDays())) {
				t.Fatalf("order %s abandoned on %s, last touched %s", id, day, before.Quote.OrderDate)
			}
		}
	}
}

func TestACartUntouchedForSevenDaysIsAbandoned(t *testing.T) {
	// Last touched on Sunday 15 March: still a cart on the 21st, abandoned from the 22nd.
	sixDays := time.Date(2026, 3, 21, 23, 59, 0, 0, domain.Rome)
	seven := time.Date(2026, 3, 22, 0, 1, 0, 0, domain.Rome)
	givenOrder(t, requested()).on(sixDays).when(domain.SweepOrder{}).thenError(domain.ErrNothingToSweep)
	givenOrder(t, requested()).on(sixDays).when(domain.AbandonOrder{}).thenError(domain.ErrCartNotAbandoned)
	givenOrder(t, requested(), checkoutStarted()).on(seven).when(domain.SweepOrder{}).
		thenEvents(domain.OrderAbandoned{LastActiveOn: today, AbandonedAt: seven})
	// Touched on the 20th (priced again then), it lasts until the 27th.
	touched, err := domain.DecideOrder(cat, orderOf(requested()), domain.ProceedToCheckout{}, time.Date(2026, 3, 20, 12, 0, 0, 0, domain.Rome))
	if err != nil {
		t.Fatal(err)
	}
	givenOrder(t, with([]domain.Event{requested()}, touched...)...).on(seven).when(domain.SweepOrder{}).thenError(domain.ErrNothingToSweep)
}

// Rule 4: a year is a year (the world's TestPropertyTheConfirmedQuoteIsChargedAndGranted
// checks each grant against its payment day); here, no purchase gives less than a year.

func TestPropertyAYearIsAYear(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).aYearIsAYear) })
}

func (w *world) aYearIsAYear(t *rapid.T) {
	w.confirmedIsChargedAndGranted(t)
	for _, e := range w.subLog {
		if a, ok := e.(domain.SpaceAdded); ok && a.ValidFrom.DaysUntil(a.ValidUntil) < 365 {
			t.Fatalf("space %+v runs %d days", a, a.ValidFrom.DaysUntil(a.ValidUntil))
		}
	}
}

// Rule 5: end of month stays end of month.

func TestPropertyEndOfMonthStaysEndOfMonth(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := domain.Date{Year: 2024, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 12*366).Draw(t, "day"))
		n := rapid.IntRange(0, 36).Draw(t, "months")
		got := d.AddMonths(n)
		if d.IsEndOfMonth() && !got.IsEndOfMonth() {
			t.Fatalf("%s (end of month) + %d months = %s", d, n, got)
		}
		if !d.IsEndOfMonth() && got.Day != min(d.Day, got.AddMonths(1).AddDays(-got.AddMonths(1).Day).Day) {
			t.Fatalf("%s + %d months = %s", d, n, got)
		}
		// The months charged from d to got are n: no month more, no month less.
		if n > 0 && d.MonthsUntil(got) != n {
			t.Fatalf("%s to %s: %d months, want %d", d, got, d.MonthsUntil(got), n)
		}
	})
}

func TestMonthsChargedFollowTheEndOfMonth(t *testing.T) {
	for _, c := range []struct {
		from, to string
		months   int
	}{
		{"2026-09-30", "2027-03-31", 6},
		{"2027-02-28", "2028-01-31", 11},
		{"2028-02-29", "2028-03-31", 1},
		{"2026-09-29", "2027-03-31", 7}, // not the end of a month: a started month counts
	} {
		if got := date(c.from).MonthsUntil(date(c.to)); got != c.months {
			t.Errorf("%s -> %s: %d months, want %d", c.from, c.to, got, c.months)
		}
	}
	if got := date("2027-02-28").AddMonths(12); got != date("2028-02-29") {
		t.Errorf("28 February 2027 + 1 year = %s, want 29 February 2028", got)
	}
	if got := date("2028-02-29").AddMonths(12); got != date("2029-02-28") {
		t.Errorf("29 February 2028 + 1 year = %s, want 28 February 2029", got)
	}
}

// Rule 6: money that arrives is never refused.

func TestPropertyMoneyThatArrivesIsNeverRefused(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).moneyIsNeverRefused) })
}

func (w *world) moneyIsNeverRefused(t *rapid.T) {
	w.paymentsApplyOnce(t)
	for id, o := range w.orders {
		if o.state.Status == domain.StatusNone {
			continue
		}
		amount := rapid.Int64Range(1, domain.MaxAmountCents).Draw(t, "amount")
		pay := domain.RegisterPayment{AmountCents: amount, Method: domain.MethodBankTransfer, Reference: "FRESH-" + uuid.NewString()}
		events, err := domain.DecideOrder(cat, o.state, pay, w.now)
		if err != nil {
			t.Fatalf("order %s (%s): well-formed payment of %d refused: %v", id, o.state.Status, amount, err)
		}
		after := o.state
		for _, e := range events {
			after = domain.EvolveOrder(after, e)
		}
		if (after.PaidCents-o.state.PaidCents)+(after.CreditCents-o.state.CreditCents) != amount {
			t.Fatalf("order %s: %d cents arrived, %s", id, amount, show(events))
		}
	}
}

func TestAPartlyPaidOrderPastItsTermIsOverdueNotExpired(t *testing.T) {
	dayAfterTerm := time.Date(2026, 4, 15, 0, 0, 1, 0, domain.Rome)
	partly := with(confirmedOrder(), domain.PaymentRegistered{AmountCents: 100, Method: "bank-transfer", Reference: "CRO-1", PaidCents: 100, RegisteredAt: now})
	events := givenOrder(t, partly...).on(dayAfterTerm).when(domain.SweepOrder{}).
		thenEvents(domain.OrderOverdue{PayBy: date("2026-04-14"), PaidCents: 100, DueCents: 8440, OverdueAt: dayAfterTerm})
	overdue := with(partly, events...)
	if s := orderOf(overdue...).Status; s != domain.StatusOverdue || !s.InProgress() {
		t.Fatalf("status %s", s)
	}
	// More money for it is owed back; the customer cannot cancel it; an operator can, and
	// what was paid becomes a credit due.
	givenOrder(t, overdue...).on(dayAfterTerm).when(domain.CancelOrder{}).thenError(domain.ErrOrderPartiallyPaid)
	givenOrder(t, overdue...).on(dayAfterTerm).when(domain.CancelOrder{Reason: "finance", ByOperator: true}).thenEvents(
		domain.OrderCancelled{Reason: "finance", CancelledAt: dayAfterTerm},
		domain.CreditDue{OrderID: orderID, SubscriptionID: subID, OwnerID: "customer-42", Holder: holder,
			AmountCents: 100, Reason: domain.CreditCancelledPartlyPaid, RecordedAt: dayAfterTerm},
	)
}

// Rule 7: working days.

func TestPropertyWorkingDays(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := domain.Date{Year: 2024, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 10*366).Draw(t, "day"))
		n := rapid.IntRange(0, 20).Draw(t, "working days")
		got := d.AddWorkingDays(n)
		count := 0
		for x := d.AddDays(1); !x.After(got); x = x.AddDays(1) {
			if domain.IsWorkingDay(x) {
				count++
			}
		}
		if count != n || (n > 0 && !domain.IsWorkingDay(got)) || (n == 0 && got != d) {
			t.Fatalf("%s + %d working days = %s (%d working days between)", d, n, got, count)
		}
	})
}

func TestWorkingDaysSkipWeekendsAndItalianHolidays(t *testing.T) {
	for _, c := range []struct {
		from string
		n    int
		want string
	}{
		{"2026-03-15", 5, "2026-03-20"}, // Sunday: Monday to Friday
		{"2026-04-02", 5, "2026-04-10"}, // Easter Monday 6 April 2026 is not a working day
		{"2026-12-23", 5, "2026-12-31"}, // Christmas; St Stephen is a Saturday
		{"2026-12-30", 3, "2027-01-05"}, // New Year, a weekend; Epiphany is the 6th
		{"2026-04-23", 1, "2026-04-24"},
		{"2026-04-24", 1, "2026-04-27"}, // 25 April is a Saturday anyway
		{"2026-06-01", 1, "2026-06-03"}, // Republic Day
		{"2026-10-02", 1, "2026-10-05"}, // 4 October 2026 is a Sunday
		{"2027-10-01", 2, "2027-10-06"}, // 4 October 2027, a Monday, is St Francis
	} {
		if got := date(c.from).AddWorkingDays(c.n); got != date(c.want) {
			t.Errorf("%s + %d working days = %s, want %s", c.from, c.n, got, c.want)
		}
	}
	for y, want := range map[int]string{2024: "2024-03-31", 2025: "2025-04-20", 2026: "2026-04-05", 2027: "2027-03-28", 2038: "2038-04-25"} {
		if got := domain.EasterSunday(y); got != date(want) {
			t.Errorf("Easter %d = %s, want %s", y, got, want)
		}
	}
}

// Rule 8: earlier space is an active service.

func TestPropertyEarlierSpaceIsAlignedAndNeverGoesDown(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).earlierSpaceAligned) })
}

func (w *world) earlierSpaceAligned(t *rapid.T) {
	w.purchasedSpaceNeverGoesDown(t)
	// No block's validity ever shrinks: on every day, the space after each event covers at
	// least what it covered before.
	var prev domain.Subscription
	for i, s := range w.subStates {
		for _, b := range prev.Space {
			j := -1
			for k, nb := range s.Space {
				if nb.OrderID == b.OrderID {
					j = k
				}
			}
			if j < 0 || s.Space[j].ValidUntil.Before(b.ValidUntil) || s.Space[j].ValidFrom != b.ValidFrom {
				t.Fatalf("block %+v shrank or vanished after %T", b, w.subLog[i])
			}
		}
		prev = s
		x, ok := w.subLog[i].(domain.SpaceExtended)
		if !ok {
			continue
		}
		added := w.subLog[i-1]
		for k := i - 1; k >= 0; k-- {
			if a, ok := w.subLog[k].(domain.SpaceAdded); ok && a.OrderID == x.OrderID {
				added = a
				break
			}
		}
		for _, b := range x.Blocks {
			if b.NewUntil != added.(domain.SpaceAdded).ValidUntil || !b.OldUntil.Before(b.NewUntil) {
				t.Fatalf("block %+v not aligned to %+v", b, added)
			}
		}
	}
}

func TestEarlierSpaceIsChargedPerGBPerMonthAndAligned(t *testing.T) {
	first := uuid.MustParse("0d3e7f10-0000-4000-8000-0000000000f1")
	// 2 GB bought on 10 October 2025 run to 10 October 2026; on 15 March 2026 a new GB
	// runs to 15 March 2027: the 2 GB are 5 months and 5 days short (6 months charged, a
	// started month counting whole) at 2.50 EUR per GB and month.
	block := domain.SpaceBlock{OrderID: first, GB: 2, ValidFrom: date("2025-10-10"), ValidUntil: date("2026-10-10")}
	q, err := cat.QuoteFor(services(), []domain.SpaceBlock{block}, 1, true, today)
	if err != nil {
		t.Fatal(err)
	}
	l := q.EarlierSpace()
	if len(l) != 1 || l[0].Quantity != 2 || l[0].Months != 6 || l[0].UnitCents != 250 || l[0].NetCents != 3000 {
		t.Fatalf("earlier space lines %+v", l)
	}
	if off, _ := cat.QuoteFor(services(), []domain.SpaceBlock{block}, 1, false, today); len(off.EarlierSpace()) != 0 {
		t.Fatal("earlier space priced with co-termination off")
	}
	paidAt := now.Add(48 * time.Hour)
	events, err := domain.DecideSubscription(cat, subscriptionOf(subscriptionOpened(), domain.SpaceAdded(block)),
		domain.ApplyPurchase{OrderID: orderID, Quote: q, PaidAt: paidAt}, paidAt)
	if err != nil {
		t.Fatal(err)
	}
	x, ok := events[len(events)-1].(domain.SpaceExtended)
	granted := date("2027-03-17")
	if !ok || len(x.Blocks) != 1 || x.Blocks[0] != (domain.BlockExtension{OrderID: first, GB: 2, OldUntil: block.ValidUntil, NewUntil: granted, Months: 6}) {
		t.Fatalf("purchase events %s", show(events))
	}
	after := subscriptionOf(with([]domain.Event{subscriptionOpened(), domain.SpaceAdded(block)}, events...)...)
	if after.PurchasedGB(granted) != 3 || after.PurchasedGB(granted.AddDays(1)) != 0 {
		t.Fatalf("space on %s: %d GB", granted, after.PurchasedGB(granted))
	}
}

// Rule 9: no arithmetic wraps.

func TestPropertyNoArithmeticWraps(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		day := domain.Date{Year: 2026, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 400).Draw(t, "day"))
		huge := rapid.OneOf(rapid.IntRange(math.MinInt, math.MaxInt), rapid.IntRange(-2, 20_000), rapid.SampledFrom([]int{math.MaxInt, 138350580552821634, 1 << 40}))
		svcs := []domain.Service{
			{Kind: domain.KindBase, Quantity: 1, ExpiresOn: day.AddDays(rapid.IntRange(0, 300).Draw(t, "base days"))},
			{Kind: domain.KindUsers, Quantity: huge.Draw(t, "users"), ExpiresOn: day.AddDays(rapid.IntRange(0, 300).Draw(t, "users days"))},
		}
		// Opening refuses what is out of range, naming the field.
		_, err := domain.DecideSubscription(cat, domain.Subscription{}, domain.OpenSubscription{
			SubscriptionID: subID, OwnerID: "c", Holder: holder, Language: "it", Services: svcs,
		}, now)
		var fe *domain.FieldError
		inRange := svcs[1].Quantity >= 1 && svcs[1].Quantity <= cat.MaxQuantity()
		if svcs[1].Quantity > cat.MaxQuantity() && (!errors.As(err, &fe) || fe.Field != "services[1].quantity") {
			t.Fatalf("users %d: %v, want a refusal naming services[1].quantity", svcs[1].Quantity, err)
		}
		if inRange && err != nil {
			t.Fatalf("users %d refused: %v", svcs[1].Quantity, err)
		}
		gb := huge.Draw(t, "gb")
		q, err := cat.Quote(svcs, gb, true, day)
		if err != nil {
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("quote refused without naming a field: %v", err)
			}
			return
		}
		if !inRange || gb < 1 || gb > cat.Space.MaxGB {
			t.Fatalf("priced users %d, gb %d", svcs[1].Quantity, gb)
		}
		if err := checkQuote(q); err != nil {
			t.Fatal(err)
		}
		// Usage and payments have their documented maxima.
		used := rapid.Int64Range(math.MinInt64, math.MaxInt64).Draw(t, "used bytes")
		_, err = domain.DecideSubscription(cat, subscriptionOf(subscriptionOpened()), domain.ReportUsage{UsedBytes: used}, now)
		if (err != nil) != (used < 0 || used > domain.MaxUsedBytes) || (err != nil && (!errors.As(err, &fe) || fe.Field != "usedBytes")) {
			t.Fatalf("usage %d: %v", used, err)
		}
	})
}

func TestOutOfRangeAmountsNameTheirField(t *testing.T) {
	var fe *domain.FieldError
	_, err := domain.DecideOrder(cat, orderOf(confirmedOrder()...), domain.RegisterPayment{AmountCents: math.MaxInt64, Method: "card", Reference: "X"}, now)
	if !errors.Is(err, domain.ErrAmountOutOfRange) || !errors.As(err, &fe) || fe.Field != "amountCents" {
		t.Fatalf("payment of MaxInt64: %v", err)
	}
	_, err = domain.DecideOrder(cat, orderOf(requested()), domain.ModifyOrder{GB: math.MaxInt, CoTermination: true}, now)
	if !errors.Is(err, domain.ErrInvalidQuantity) || !errors.As(err, &fe) || fe.Field != "gb" {
		t.Fatalf("modify to MaxInt GB: %v", err)
	}
}
