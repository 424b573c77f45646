package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

func openCommand() domain.OpenSubscription {
	return domain.OpenSubscription{
		SubscriptionID: subID, OwnerID: "customer-42", Holder: holder, Language: "it", Services: services(),
	}
}

// OpenSubscription -> SubscriptionOpened. Base quota 1 GB.

func TestOpenSubscriptionGrantsTheBaseQuotaOf1GB(t *testing.T) {
	cmd := openCommand()
	cmd.Holder = domain.Holder{Name: "  Rossi S.r.l. ", Email: " amministrazione@rossi.example "}
	events := givenSubscription(t).when(cmd).thenEvents(domain.SubscriptionOpened{
		SubscriptionID: subID, OwnerID: "customer-42", Holder: holder, Language: "it",
		Services: services(), BaseGB: 1, OpenedOn: today,
	})
	s := subscriptionOf(events...)
	if !s.Opened || s.BaseGB != 1 || s.TotalPurchasedGB() != 0 || s.Closed(today) {
		t.Fatalf("opened subscription %+v", s)
	}
}

func TestOpeningASubscriptionTwiceIsRefused(t *testing.T) {
	givenSubscription(t, subscriptionOpened()).when(openCommand()).thenError(domain.ErrSubscriptionExists)
}

func TestCommandsToAnUnknownSubscriptionAreRefused(t *testing.T) {
	for _, cmd := range []domain.SubscriptionCommand{
		domain.ReserveOrderSlot{OrderID: orderID},
		domain.ReleaseOrderSlot{OrderID: orderID},
		domain.ApplyPurchase{OrderID: orderID, Quote: requested().Quote, PaidAt: now},
		domain.ReportUsage{UsedBytes: 1},
	} {
		givenSubscription(t).when(cmd).thenError(domain.ErrUnknownSubscription)
	}
}

func TestOpenSubscriptionRefusesAnInvalidOwner(t *testing.T) {
	for _, owner := range []string{"", "   ", strings.Repeat("x", 129), "cust\x00omer", "cust\nomer", "\xff\xfe"} {
		cmd := openCommand()
		cmd.OwnerID = owner
		givenSubscription(t).when(cmd).thenError(domain.ErrInvalidOwner)
	}
}

func TestOpenSubscriptionRefusesAnInvalidHolderName(t *testing.T) {
	for _, name := range []string{
		"", "  ", strings.Repeat("n", 201),
		"Rossi\x00", "Rossi\r\nBcc: victim@example.com", "Rossi\tS.r.l.", "Rossi\x7f", "Ros\u0085si", "\xff",
	} {
		cmd := openCommand()
		cmd.Holder.Name = name
		givenSubscription(t).when(cmd).thenError(domain.ErrInvalidHolder)
	}
	cmd := openCommand()
	cmd.Holder.Name = strings.Repeat("è", 200) // 200 characters, 400 bytes: allowed
	givenSubscription(t).when(cmd).thenEvents(domain.SubscriptionOpened{
		SubscriptionID: subID, OwnerID: "customer-42", Holder: domain.Holder{Name: cmd.Holder.Name, Email: holder.Email},
		Language: "it", Services: services(), BaseGB: 1, OpenedOn: today,
	})
}

func TestOpenSubscriptionRefusesAnInvalidHolderEmail(t *testing.T) {
	for _, email := range []string{
		"", "not-an-email", "@example.com", "rossi@",
		"Rossi <rossi@example.com>",                 // a display name could smuggle headers
		"rossi@example.com (comment)",               // so could a comment
		"rossi@example.com\r\nBcc: x@evil.test",     // header injection
		"rossi@example.com, other@example.com",      // two recipients
		"\"rossi\r\nBcc: x@evil.test\"@example.com", // quoted local part with a line break
		"rossi\x00@example.com",
		strings.Repeat("a", 250) + "@example.com", // too long
	} {
		cmd := openCommand()
		cmd.Holder.Email = email
		givenSubscription(t).when(cmd).thenError(domain.ErrInvalidHolder)
	}
}

func TestOpenSubscriptionRefusesAnUnknownLanguage(t *testing.T) {
	for _, lang := range []string{"", "de", "IT", "it-IT"} {
		cmd := openCommand()
		cmd.Language = lang
		givenSubscription(t).when(cmd).thenError(domain.ErrInvalidLanguage)
	}
}

func TestOpenSubscriptionRefusesInvalidServices(t *testing.T) {
	base := domain.Service{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2026-09-30")}
	users := domain.Service{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: date("2026-09-30")}
	for name, svcs := range map[string][]domain.Service{
		"none":              nil,
		"no base":           {users},
		"base twice":        {base, base},
		"two base units":    {{Kind: domain.KindBase, Quantity: 2, ExpiresOn: base.ExpiresOn}},
		"no quantity":       {base, {Kind: domain.KindUsers, Quantity: 0, ExpiresOn: base.ExpiresOn}},
		"negative quantity": {base, {Kind: domain.KindUsers, Quantity: -1, ExpiresOn: base.ExpiresOn}},
		"no expiry":         {base, {Kind: domain.KindUsers, Quantity: 1}},
	} {
		cmd := openCommand()
		cmd.Services = svcs
		d := givenSubscription(t).when(cmd)
		if d.err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		d.thenError(domain.ErrInvalidServices)
	}
	cmd := openCommand()
	cmd.Services = []domain.Service{base, {Kind: "space", Quantity: 1, ExpiresOn: base.ExpiresOn}}
	givenSubscription(t).when(cmd).thenError(domain.ErrUnknownServiceKind)
	cmd.Services = []domain.Service{base, {Kind: "teleport", Quantity: 1, ExpiresOn: base.ExpiresOn}}
	givenSubscription(t).when(cmd).thenError(domain.ErrUnknownServiceKind)
}

// One order in progress (not yet paid, cancelled or expired) per subscription at a time.

func TestOneOrderInProgressPerSubscription(t *testing.T) {
	reserved := domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now}
	givenSubscription(t, subscriptionOpened()).when(domain.ReserveOrderSlot{OrderID: orderID}).thenEvents(reserved)
	// The same order again: already so.
	givenSubscription(t, subscriptionOpened(), reserved).when(domain.ReserveOrderSlot{OrderID: orderID}).thenEvents()
	// Another order while the first is in progress: refused.
	givenSubscription(t, subscriptionOpened(), reserved).when(domain.ReserveOrderSlot{OrderID: otherID}).
		thenError(domain.ErrOrderInProgress)
}

func TestTheOrderSlotIsReleasedOnCancel(t *testing.T) {
	reserved := domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now}
	released := domain.OrderSlotReleased{OrderID: orderID, Reason: "cancelled"}
	givenSubscription(t, subscriptionOpened(), reserved).when(domain.ReleaseOrderSlot{OrderID: orderID, Reason: "cancelled"}).
		thenEvents(released)
	givenSubscription(t, subscriptionOpened(), reserved, released).when(domain.ReserveOrderSlot{OrderID: otherID}).
		thenEvents(domain.OrderSlotReserved{OrderID: otherID, ReservedAt: now})
	// Releasing a slot the order does not hold changes nothing.
	givenSubscription(t, subscriptionOpened(), reserved).when(domain.ReleaseOrderSlot{OrderID: otherID}).thenEvents()
	givenSubscription(t, subscriptionOpened()).when(domain.ReleaseOrderSlot{OrderID: uuid.Nil}).thenEvents()
}

func TestTheOrderSlotIsReleasedWhenThePurchaseIsApplied(t *testing.T) {
	s := subscriptionOf(subscriptionOpened(), domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now},
		domain.SpaceAdded{OrderID: orderID, GB: 1, ValidFrom: today, ValidUntil: yearOn})
	if s.OpenOrder != uuid.Nil {
		t.Fatalf("slot still held by %s after the purchase", s.OpenOrder)
	}
}

func TestNoOrderSlotOnAClosedSubscription(t *testing.T) {
	givenSubscription(t, subscriptionOpened(domain.Service{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2026-03-14")})).
		when(domain.ReserveOrderSlot{OrderID: orderID}).thenError(domain.ErrSubscriptionClosed)
}

// ApplyPurchase (driven by a paid order, idempotent per order id) -> SpaceAdded and, with
// co-termination, ServicesExtended.

// Rule 4: a year is a year. Confirmed on 15 March, paid on 20 March: the space runs from 20
// March 2026 to 20 March 2027, and the co-terminated services to the same day; the months
// charged stay the confirmed quote's.
func TestPurchaseGrantsTheConfirmedQuoteFromThePaymentDay(t *testing.T) {
	paidAt := time.Date(2026, 3, 20, 9, 0, 0, 0, domain.Rome)
	q := confirmed().Quote
	granted := date("2027-03-20")
	givenSubscription(t, subscriptionOpened(), domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now}).
		when(domain.ApplyPurchase{OrderID: orderID, Quote: q, PaidAt: paidAt}).
		thenEvents(
			domain.SpaceAdded{OrderID: orderID, GB: 1, ValidFrom: date("2026-03-20"), ValidUntil: granted},
			domain.ServicesExtended{OrderID: orderID, Services: []domain.ServiceExtension{
				{Kind: domain.KindBase, Quantity: 1, OldExpiry: date("2026-09-30"), NewExpiry: granted, Months: 6},
				{Kind: domain.KindUsers, Quantity: 3, OldExpiry: date("2026-06-10"), NewExpiry: granted, Months: 10},
			}},
		)
}

func TestCoTerminationExtendsEveryActiveServiceToTheNewExpiry(t *testing.T) {
	s := subscriptionOf(subscriptionOpened())
	events, err := domain.DecideSubscription(cat, s, domain.ApplyPurchase{OrderID: orderID, Quote: confirmed().Quote, PaidAt: now}, now)
	if err != nil {
		t.Fatal(err)
	}
	after := subscriptionOf(with([]domain.Event{subscriptionOpened()}, events...)...)
	for kind, want := range map[string]domain.Date{
		domain.KindBase:  yearOn,             // active, ended before: extended
		domain.KindUsers: yearOn,             // active, ended before: extended
		"conservation":   date("2027-06-30"), // already past the new expiry: untouched
		"reports":        date("2026-01-31"), // already expired: untouched
	} {
		if got, _ := after.Service(kind); got.ExpiresOn != want {
			t.Errorf("%s expires %s, want %s", kind, got.ExpiresOn, want)
		}
	}
	if after.PurchasedGB(today) != 1 || after.PurchasedGB(yearOn) != 1 || after.PurchasedGB(yearOn.AddDays(1)) != 0 {
		t.Errorf("the extra GB should be valid from today until %s inclusive", yearOn)
	}
}

func TestWithCoTerminationOffOnlyTheSpaceIsDated(t *testing.T) {
	q := mustQuote(t, services(), 2, false, today)
	events := givenSubscription(t, subscriptionOpened()).when(domain.ApplyPurchase{OrderID: orderID, Quote: q, PaidAt: now}).
		thenEvents(domain.SpaceAdded{OrderID: orderID, GB: 2, ValidFrom: today, ValidUntil: yearOn})
	after := subscriptionOf(with([]domain.Event{subscriptionOpened()}, events...)...)
	for i, sv := range after.Services {
		if sv != services()[i] {
			t.Errorf("service %s changed to %+v with co-termination off", sv.Kind, sv)
		}
	}
}

func TestPurchaseNeverShortensAServiceRenewedSinceTheQuote(t *testing.T) {
	// The base service was renewed past the quote's expiry before the order was paid.
	renewed := services()
	renewed[0].ExpiresOn = date("2027-09-30")
	givenSubscription(t, subscriptionOpened(renewed...)).
		when(domain.ApplyPurchase{OrderID: orderID, Quote: confirmed().Quote, PaidAt: now}).
		thenEvents(
			domain.SpaceAdded{OrderID: orderID, GB: 1, ValidFrom: today, ValidUntil: yearOn},
			domain.ServicesExtended{OrderID: orderID, Services: []domain.ServiceExtension{
				{Kind: domain.KindUsers, Quantity: 3, OldExpiry: date("2026-06-10"), NewExpiry: yearOn, Months: 10},
			}},
		)
}

func TestPurchaseAppliesOncePerOrder(t *testing.T) {
	q := confirmed().Quote
	given := []domain.Event{subscriptionOpened(), domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now}}
	events, err := domain.DecideSubscription(cat, subscriptionOf(given...), domain.ApplyPurchase{OrderID: orderID, Quote: q, PaidAt: now}, now)
	if err != nil || len(events) == 0 {
		t.Fatalf("first application: %v %v", events, err)
	}
	applied := with(given, events...)
	// Applying the same paid order again, even later, grants nothing more.
	givenSubscription(t, applied...).on(now.Add(48 * time.Hour)).
		when(domain.ApplyPurchase{OrderID: orderID, Quote: q, PaidAt: now.Add(48 * time.Hour)}).thenEvents()
	if got := subscriptionOf(applied...).TotalPurchasedGB(); got != 1 {
		t.Fatalf("purchased %d GB, want 1", got)
	}
}

func TestPurchasedSpaceNeverGoesDown(t *testing.T) {
	// Every subscription command, in every state a purchase leaves: none lowers the space
	// ever purchased, and none can be told to.
	given := []domain.Event{
		subscriptionOpened(),
		domain.SpaceAdded{OrderID: otherID, GB: 5, ValidFrom: date("2025-03-01"), ValidUntil: date("2026-03-01")}, // already run out
		domain.OrderSlotReserved{OrderID: orderID, ReservedAt: now},
		domain.SpaceAdded{OrderID: orderID, GB: 1, ValidFrom: today, ValidUntil: yearOn},
	}
	before := subscriptionOf(given...).TotalPurchasedGB()
	if before != 6 {
		t.Fatalf("purchased %d GB, want 6", before)
	}
	for _, cmd := range []domain.SubscriptionCommand{
		openCommand(),
		domain.ReserveOrderSlot{OrderID: uuid.New()},
		domain.ReleaseOrderSlot{OrderID: orderID, Reason: "cancelled"},
		domain.ApplyPurchase{OrderID: orderID, Quote: confirmed().Quote, PaidAt: now},
		domain.ApplyPurchase{OrderID: otherID, Quote: confirmed().Quote, PaidAt: now},
		domain.ReportUsage{UsedBytes: 0},
	} {
		events, _ := domain.DecideSubscription(cat, subscriptionOf(given...), cmd, now.AddDate(2, 0, 0))
		if after := subscriptionOf(with(given, events...)...).TotalPurchasedGB(); after < before {
			t.Errorf("%T lowered the purchased space from %d to %d GB", cmd, before, after)
		}
	}
}

// ReportUsage -> UsageReported.

func TestReportUsageRecordsTheBytesUsed(t *testing.T) {
	givenSubscription(t, subscriptionOpened()).when(domain.ReportUsage{UsedBytes: 750 << 20}).
		thenEvents(domain.UsageReported{UsedBytes: 750 << 20, ReportedAt: now})
	givenSubscription(t, subscriptionOpened()).when(domain.ReportUsage{UsedBytes: -1}).thenError(domain.ErrInvalidUsage)
}

// The command path caches states and shares them between requests: folding one event into
// a state must leave that state, and every other state folded from it, as they were.
func TestEvolveNeverChangesTheStateItIsGiven(t *testing.T) {
	block := func(gb int) domain.SpaceAdded {
		return domain.SpaceAdded{OrderID: uuid.New(), GB: gb, ValidFrom: today, ValidUntil: yearOn}
	}
	// Three blocks leave room in the slice for a fourth: two branches could share it.
	s := subscriptionOf(subscriptionOpened(), block(1), block(2), block(3))
	a := domain.EvolveSubscription(s, block(10))
	b := domain.EvolveSubscription(s, block(20))
	c := domain.EvolveSubscription(s, domain.ServicesExtended{OrderID: orderID, Services: []domain.ServiceExtension{
		{Kind: domain.KindBase, Quantity: 1, OldExpiry: date("2026-09-30"), NewExpiry: yearOn, Months: 6},
	}})
	if len(s.Space) != 3 || len(s.Applied) != 3 || a.TotalPurchasedGB() != 16 || b.TotalPurchasedGB() != 26 {
		t.Fatalf("branches share space: given %d GB, then %d and %d", s.TotalPurchasedGB(), a.TotalPurchasedGB(), b.TotalPurchasedGB())
	}
	if base, _ := s.Service(domain.KindBase); base.ExpiresOn != date("2026-09-30") {
		t.Fatalf("extending a branch moved the given state's base expiry to %s", base.ExpiresOn)
	}
	if base, _ := c.Service(domain.KindBase); base.ExpiresOn != yearOn {
		t.Fatalf("the extension did not apply: %s", base.ExpiresOn)
	}

	o := orderOf(with(confirmedOrder(), domain.PaymentRegistered{AmountCents: 100, Method: "card", Reference: "A", PaidCents: 100, RegisteredAt: now})...)
	o1 := domain.EvolveOrder(o, domain.PaymentRegistered{AmountCents: 200, Method: "card", Reference: "B", PaidCents: 300, RegisteredAt: now})
	o2 := domain.EvolveOrder(o, domain.PaymentRegistered{AmountCents: 300, Method: "card", Reference: "C", PaidCents: 400, RegisteredAt: now})
	if len(o.Payments) != 1 || o.PaidCents != 100 || len(o1.Payments) != 2 || o1.Payments["C"] != 0 || o2.Payments["B"] != 0 {
		t.Fatalf("branches share payments: %v %v %v", o.Payments, o1.Payments, o2.Payments)
	}
}
