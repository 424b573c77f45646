package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/einvoice/spaceorders/domain"
)

// The invariants of DESIGN.md under any interleaving of commands: random sequences of
// commands over one subscription and its orders, fed through the real deciders and evolve
// functions, with the order slot claimed and released as the command handler does. Each
// property runs propertyChecks sequences (see TestMain).

func TestPropertyPurchasedSpaceNeverGoesDown(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).purchasedSpaceNeverGoesDown) })
}

func TestPropertyAPaymentNeverAppliesTwice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).paymentsApplyOnce) })
}

func TestPropertyAPaidOrderIsAppliedToItsSubscriptionOnce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).purchasesApplyOnce) })
}

func TestPropertyNeverTwoOrdersInProgress(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).oneOrderInProgress) })
}

func TestPropertyConfirmedTotalIsLinesPlusVAT(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).quotesAddUp) })
}

func TestPropertyNoStateChangeAfterConfirmationExceptPaymentCancellationExpiry(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).frozenAfterConfirmation) })
}

func TestPropertyTheConfirmedQuoteIsChargedAndGranted(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { runWorld(t, (*world).confirmedIsChargedAndGranted) })
}

// The world: one subscription and the orders made on it.

type world struct {
	now    time.Time
	sub    domain.Subscription
	subLog []domain.Event
	// subStates holds the state after each event, as the run held it.
	subStates []domain.Subscription
	orders    map[uuid.UUID]*orderLog
	ids       []uuid.UUID // in the order they were first tried
	maxSeen   int         // the most purchased GB seen so far
	payments  int         // references handed out by the gateway
}

type orderLog struct {
	state  domain.Order
	events []domain.Event
	states []domain.Order // the state after each event, as the run held it
	at     []time.Time    // when each event was decided
}

// actionWeights says how often each action is drawn: "proceed" walks the latest order
// along the help page's path, so that sequences reach confirmation and payment; the others
// stray from it.
var actionWeights = map[string]int{
	"request": 2, "proceed": 14, "toggle": 1, "checkout": 1, "selectMethod": 1, "modify": 1,
	"confirm": 2, "pay": 3, "retryPayment": 2, "cancel": 1, "expire": 2, "applyAgain": 1,
	"reserveStray": 1, "passTime": 3, "reportUsage": 1, "sweep": 2, "operatorCancel": 1,
}

var weightedActions = func() []string {
	var names []string
	for name, n := range actionWeights {
		for range n {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}()

// runWorld plays 10 to 120 random actions, checking the invariant after each, and at the
// end that every state held is the replay of its log.
func runWorld(t *rapid.T, invariant func(*world, *rapid.T)) {
	w := newWorld(t)
	actions := map[string]func(*rapid.T){
		"request":      w.request,
		"proceed":      w.proceed,
		"toggle":       w.orderCommand(genToggle),
		"checkout":     w.orderCommand(func(*rapid.T, *orderLog) domain.OrderCommand { return domain.ProceedToCheckout{} }),
		"selectMethod": w.orderCommand(genSelectMethod),
		"modify":       w.orderCommand(genModify),
		"confirm":      w.orderCommand(genConfirm),
		"pay":          w.orderCommand(genPayment),
		"retryPayment": w.orderCommand(genRetry),
		"cancel":       w.orderCommand(func(*rapid.T, *orderLog) domain.OrderCommand { return domain.CancelOrder{Reason: "changed my mind"} }),
		"expire":       w.orderCommand(func(*rapid.T, *orderLog) domain.OrderCommand { return domain.ExpireOrder{} }),
		"applyAgain":   w.applyAgain,
		"reserveStray": w.reserveStray,
		"passTime":     w.passTime,
		"reportUsage":  w.reportUsage,
		"sweep":        w.sweep,
		"operatorCancel": w.orderCommand(func(*rapid.T, *orderLog) domain.OrderCommand {
			return domain.CancelOrder{Reason: "operator", ByOperator: true}
		}),
	}
	invariant(w, t)
	for n := rapid.SampledFrom([]int{10, 30, 60, 120}).Draw(t, "steps"); n > 0; n-- {
		actions[rapid.SampledFrom(weightedActions).Draw(t, "action")](t)
		invariant(w, t)
	}
	w.replaysTheSame(t)
}

func newWorld(t *rapid.T) *world {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, domain.Rome).
		Add(time.Duration(rapid.Int64Range(0, 400*24).Draw(t, "startHours")) * time.Hour)
	startDay := domain.DateOf(start)
	kinds := []string{domain.KindBase, domain.KindUsers, "conservation", "reports"}
	var svcs []domain.Service
	for i, kind := range kinds {
		if i > 0 && !rapid.Bool().Draw(t, "has "+kind) {
			continue
		}
		qty := 1
		if kind != domain.KindBase {
			qty = rapid.IntRange(1, 20).Draw(t, "quantity of "+kind)
		}
		// From a month ago (already expired) to two years ahead.
		exp := startDay.AddDays(rapid.IntRange(-30, 730).Draw(t, "days to expiry of "+kind))
		if kind == domain.KindBase && exp.Before(startDay) {
			exp = startDay
		}
		svcs = append(svcs, domain.Service{Kind: kind, Quantity: qty, ExpiresOn: exp})
	}
	w := &world{now: start, orders: map[uuid.UUID]*orderLog{}}
	w.decideSub(t, domain.OpenSubscription{SubscriptionID: subID, OwnerID: "customer-42", Holder: holder, Language: "it", Services: svcs})
	if !w.sub.Opened {
		t.Fatalf("the subscription did not open with %+v", svcs)
	}
	return w
}

// decideSub runs a subscription command and folds what it causes.
func (w *world) decideSub(t *rapid.T, cmd domain.SubscriptionCommand) ([]domain.Event, error) {
	events, err := domain.DecideSubscription(cat, w.sub, cmd, w.now)
	if err != nil {
		if events != nil {
			t.Fatalf("%T refused with %v, yet events %s", cmd, err, show(events))
		}
		if _, ok := domain.AsError(err); !ok {
			t.Fatalf("%T refused with %v, not a domain refusal", cmd, err)
		}
		return nil, err
	}
	for _, e := range events {
		w.sub = domain.EvolveSubscription(w.sub, e)
		w.subLog = append(w.subLog, e)
		w.subStates = append(w.subStates, w.sub)
	}
	return events, nil
}

// decideOrder runs an order command and, as the command handler does, tells the
// subscription what became of its order slot and of a paid purchase.
func (w *world) decideOrder(t *rapid.T, id uuid.UUID, o *orderLog, cmd domain.OrderCommand) ([]domain.Event, error) {
	events, err := domain.DecideOrder(cat, o.state, cmd, w.now)
	var changed *domain.QuoteChangedError
	if errors.As(err, &changed) && changed.Repriced {
		// As the handler does: a confirmation refused for another day's quote records the
		// new quote, so that the customer can confirm it.
		if _, rerr := w.decideOrder(t, id, o, domain.RepriceOrder{}); rerr != nil {
			t.Fatalf("reprice after %v: %v", err, rerr)
		}
		if o.state.Quote.TotalCents != changed.Quote.TotalCents || o.state.Quote.OrderDate != changed.Quote.OrderDate {
			t.Fatalf("refusal carried %+v, the order was repriced to %+v", changed.Quote, o.state.Quote)
		}
		return nil, err
	}
	if err != nil {
		if events != nil {
			t.Fatalf("%T refused with %v, yet events %s", cmd, err, show(events))
		}
		if _, ok := domain.AsError(err); !ok {
			t.Fatalf("%T refused with %v, not a domain refusal", cmd, err)
		}
		return nil, err
	}
	for _, e := range events {
		o.state = domain.EvolveOrder(o.state, e)
		o.events = append(o.events, e)
		o.states = append(o.states, o.state)
		o.at = append(o.at, w.now)
	}
	for _, e := range events {
		switch e := e.(type) {
		case domain.OrderCancelled:
			w.mustSub(t, domain.ReleaseOrderSlot{OrderID: id, Reason: "cancelled"})
		case domain.OrderExpired:
			w.mustSub(t, domain.ReleaseOrderSlot{OrderID: id, Reason: "expired"})
		case domain.OrderAbandoned:
			w.mustSub(t, domain.ReleaseOrderSlot{OrderID: id, Reason: "abandoned"})
		case domain.OrderPaid:
			w.mustSub(t, domain.ApplyPurchase{OrderID: e.OrderID, Quote: e.Quote, PaidAt: e.PaidAt})
		}
	}
	return events, nil
}

func (w *world) mustSub(t *rapid.T, cmd domain.SubscriptionCommand) {
	if _, err := w.decideSub(t, cmd); err != nil {
		t.Fatalf("%T %+v refused: %v", cmd, cmd, err)
	}
}

// The actions.

// request: the handler claims the subscription's slot, then opens the cart; if the cart
// is refused the slot is given back.
func (w *world) request(t *rapid.T) {
	id := uuid.New()
	if len(w.ids) > 0 && rapid.IntRange(0, 9).Draw(t, "reuse an order id") == 0 {
		id = rapid.SampledFrom(w.ids).Draw(t, "order id")
	}
	o, known := w.orders[id]
	if !known {
		o = &orderLog{}
	}
	if _, err := w.decideSub(t, domain.ReserveOrderSlot{OrderID: id}); err != nil {
		if !errors.Is(err, domain.ErrOrderInProgress) && !errors.Is(err, domain.ErrSubscriptionClosed) {
			t.Fatalf("reserve: %v", err)
		}
		return
	}
	gb := rapid.OneOf(rapid.Just(1), rapid.IntRange(-1, 102)).Draw(t, "gb")
	channel := rapid.SampledFrom([]string{"panel", "customer-area", "app", "fax"}).Draw(t, "channel")
	_, err := w.decideOrder(t, id, o, domain.RequestSpaceIncrease{OrderID: id, Subscription: w.sub, GB: gb, Channel: channel})
	if !known {
		w.orders[id] = o
		w.ids = append(w.ids, id)
	}
	if err != nil && !o.state.Status.InProgress() {
		w.mustSub(t, domain.ReleaseOrderSlot{OrderID: id, Reason: "never created"})
	}
}

func (w *world) orderCommand(gen func(*rapid.T, *orderLog) domain.OrderCommand) func(*rapid.T) {
	return func(t *rapid.T) {
		if len(w.ids) == 0 {
			w.request(t)
			return
		}
		id := w.ids[len(w.ids)-1]
		if rapid.IntRange(0, 4).Draw(t, "an older order") == 0 {
			id = rapid.SampledFrom(w.ids).Draw(t, "order id")
		}
		o := w.orders[id]
		cmd := gen(t, o)
		_, _ = w.decideOrder(t, id, o, cmd)
	}
}

func genToggle(t *rapid.T, _ *orderLog) domain.OrderCommand {
	return domain.ToggleCoTermination{Enabled: rapid.Bool().Draw(t, "co-termination")}
}

func genSelectMethod(t *rapid.T, _ *orderLog) domain.OrderCommand {
	return domain.SelectPaymentMethod{Method: rapid.SampledFrom([]string{"card", "paypal", "bank-transfer", "cash", ""}).Draw(t, "method")}
}

func genModify(t *rapid.T, _ *orderLog) domain.OrderCommand {
	return domain.ModifyOrder{
		GB:            rapid.OneOf(rapid.IntRange(1, 5), rapid.IntRange(-1, 102)).Draw(t, "gb"),
		CoTermination: rapid.Bool().Draw(t, "co-termination"),
	}
}

func genConfirm(t *rapid.T, _ *orderLog) domain.OrderCommand {
	// Mostly all three acceptances, so that orders go on to payment.
	all := rapid.IntRange(0, 3).Draw(t, "all accepted") > 0
	return domain.ConfirmOrder{
		AcceptGeneralConditions: all || rapid.Bool().Draw(t, "general conditions"),
		ApproveUnfairTerms:      all || rapid.Bool().Draw(t, "unfair terms"),
		AcknowledgePrivacy:      all || rapid.Bool().Draw(t, "privacy"),
		TermsVersion:            rapid.SampledFrom([]string{"2026-01", "2026-01", " v2 ", ""}).Draw(t, "terms version"),
	}
}

var references = []string{"TRN-1", "TRN-2", "TRN-3", "TRN-4", " TRN-1 ", ""}

func genPayment(t *rapid.T, o *orderLog) domain.OrderCommand {
	due := o.state.DueCents()
	amount := rapid.OneOf(
		rapid.Just(due),
		rapid.Int64Range(-10, max(due, 0)+10),
		rapid.Int64Range(1, max(due/2, 1)),
		rapid.Int64Range(max(due, 0)+1, max(due, 0)+1000), // more than due: rule 6's excess
	).Draw(t, "amount")
	return domain.RegisterPayment{
		AmountCents: amount,
		Method:      rapid.SampledFrom([]string{"card", "paypal", "bank-transfer", "cash"}).Draw(t, "method"),
		Reference:   rapid.SampledFrom(references).Draw(t, "reference"),
	}
}

// genRetry repeats a payment already registered, as a gateway does, sometimes with another
// amount.
func genRetry(t *rapid.T, o *orderLog) domain.OrderCommand {
	if o.state.PaidCents == 0 {
		return genPayment(t, o)
	}
	var paid []domain.PaymentRegistered
	for _, e := range o.events {
		if p, ok := e.(domain.PaymentRegistered); ok {
			paid = append(paid, p)
		}
	}
	p := rapid.SampledFrom(paid).Draw(t, "payment")
	amount := p.AmountCents
	if rapid.IntRange(0, 3).Draw(t, "other amount") == 0 {
		amount += rapid.Int64Range(-5, 5).Draw(t, "difference")
	}
	return domain.RegisterPayment{AmountCents: amount, Method: p.Method, Reference: p.Reference}
}

// proceed takes the latest order one step further along the help page's path, as a
// customer who means it would: cart, order form, payment method, confirmation, payment.
func (w *world) proceed(t *rapid.T) {
	if len(w.ids) == 0 {
		w.request(t)
		return
	}
	id := w.ids[len(w.ids)-1]
	o := w.orders[id]
	var cmd domain.OrderCommand
	switch o.state.Status {
	case domain.StatusCart:
		cmd = domain.ProceedToCheckout{}
	case domain.StatusCheckout:
		if o.state.PaymentMethod == "" {
			cmd = domain.SelectPaymentMethod{Method: rapid.SampledFrom(cat.MethodCodes()).Draw(t, "method")}
		} else {
			c := allAccepted()
			total := o.state.Quote.TotalCents
			c.ExpectedTotalCents = &total // what the customer was shown
			cmd = c
		}
	case domain.StatusConfirmed:
		if rapid.IntRange(0, 3).Draw(t, "pay late") == 0 {
			w.now = w.now.Add(time.Duration(rapid.IntRange(1, 60).Draw(t, "days late")) * 24 * time.Hour)
		}
		amount := o.state.DueCents()
		if rapid.Bool().Draw(t, "pay in part") {
			amount = rapid.Int64Range(1, amount).Draw(t, "part")
		}
		w.payments++
		cmd = domain.RegisterPayment{AmountCents: amount, Method: o.state.PaymentMethod, Reference: fmt.Sprintf("GW-%d", w.payments)}
	default:
		w.request(t)
		return
	}
	_, err := w.decideOrder(t, id, o, cmd)
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrSubscriptionNotActive) && !o.state.SubscriptionActive(domain.DateOf(w.now)):
		// The calendar ended the subscription's service: rule 2.
	case errors.Is(err, domain.ErrQuoteChanged) && o.state.Quote.OrderDate == domain.DateOf(w.now):
		// Confirmed on a later day than the quote's: rule 1; the order now shows today's.
	default:
		t.Fatalf("%T on the happy path refused: %v", cmd, err)
	}
}

// sweep is the sweeper's round: every order in progress is swept as of now.
func (w *world) sweep(t *rapid.T) {
	for _, id := range w.ids {
		o := w.orders[id]
		if !o.state.Status.InProgress() {
			continue
		}
		_, err := w.decideOrder(t, id, o, domain.SweepOrder{})
		if err != nil && !errors.Is(err, domain.ErrNothingToSweep) {
			t.Fatalf("sweep %s (%s): %v", id, o.state.Status, err)
		}
		// Rule 3: after a sweep no cart is left past its abandonment day, and rule 6: no
		// confirmed order is left past its last day to pay.
		today := domain.DateOf(w.now)
		switch s := o.state.Status; {
		case (s == domain.StatusCart || s == domain.StatusCheckout) && !today.Before(o.state.AbandonsOn(cat)):
			t.Fatalf("order %s last touched %s still a %s on %s", id, o.state.Quote.OrderDate, s, today)
		case s == domain.StatusConfirmed && today.After(o.state.PayBy):
			t.Fatalf("order %s payable until %s still confirmed on %s", id, o.state.PayBy, today)
		}
	}
}

// applyAgain delivers a paid order's purchase once more, as an at-least-once relay may.
func (w *world) applyAgain(t *rapid.T) {
	var paid []domain.OrderPaid
	for _, id := range w.ids {
		for _, e := range w.orders[id].events {
			if p, ok := e.(domain.OrderPaid); ok {
				paid = append(paid, p)
			}
		}
	}
	if len(paid) == 0 {
		return
	}
	p := rapid.SampledFrom(paid).Draw(t, "paid order")
	w.mustSub(t, domain.ApplyPurchase{OrderID: p.OrderID, Quote: p.Quote, PaidAt: w.now})
}

// reserveStray tries to claim the slot for an order that is never created; the handler
// would give it back at once.
func (w *world) reserveStray(t *rapid.T) {
	id := uuid.New()
	if _, err := w.decideSub(t, domain.ReserveOrderSlot{OrderID: id}); err == nil {
		w.mustSub(t, domain.ReleaseOrderSlot{OrderID: id, Reason: "never created"})
	}
}

func (w *world) passTime(t *rapid.T) {
	step := rapid.SampledFrom([]time.Duration{time.Minute, time.Hour, 24 * time.Hour, 31 * 24 * time.Hour, 200 * 24 * time.Hour}).Draw(t, "step")
	w.now = w.now.Add(time.Duration(rapid.IntRange(1, 3).Draw(t, "steps")) * step)
}

func (w *world) reportUsage(t *rapid.T) {
	_, _ = w.decideSub(t, domain.ReportUsage{UsedBytes: rapid.Int64Range(-1, 4<<30).Draw(t, "used bytes")})
}

// The invariants.

// replaysTheSame: every state the run held, after each event, is the fold of the log up to
// that event, from zero. So evolving is deterministic, and it never changed a state it was
// given: the command path caches states and shares them.
func (w *world) replaysTheSame(t *rapid.T) {
	var s domain.Subscription
	for i, e := range w.subLog {
		s = domain.EvolveSubscription(s, e)
		if !reflect.DeepEqual(s, w.subStates[i]) {
			t.Fatalf("the subscription after %T (event %d) differs from its replay", e, i)
		}
	}
	for id, ol := range w.orders {
		var o domain.Order
		for i, e := range ol.events {
			o = domain.EvolveOrder(o, e)
			if !reflect.DeepEqual(o, ol.states[i]) {
				t.Fatalf("order %s after %T (event %d) differs from its replay", id, e, i)
			}
		}
	}
}

func (w *world) purchasedSpaceNeverGoesDown(t *rapid.T) {
	gb := w.sub.TotalPurchasedGB()
	if gb < w.maxSeen {
		t.Fatalf("purchased space went down from %d to %d GB", w.maxSeen, gb)
	}
	w.maxSeen = gb
	// Nor does any service's expiry move back.
	opened := w.subLog[0].(domain.SubscriptionOpened)
	for _, first := range opened.Services {
		if now, _ := w.sub.Service(first.Kind); now.ExpiresOn.Before(first.ExpiresOn) {
			t.Fatalf("%s expiry went back from %s to %s", first.Kind, first.ExpiresOn, now.ExpiresOn)
		}
	}
}

// paymentsApplyOnce: every reference counts once, and rule 6: every cent that arrived is
// either paid toward the order or a credit due, never both, never lost; the order is paid
// exactly when its total is covered.
func (w *world) paymentsApplyOnce(t *rapid.T) {
	for id, o := range w.orders {
		var arrived, credited, paid int64
		refs := map[string]bool{}
		for _, e := range o.events {
			switch p := e.(type) {
			case domain.PaymentRegistered:
				if refs[p.Reference] {
					t.Fatalf("order %s: reference %q registered twice", id, p.Reference)
				}
				refs[p.Reference] = true
				arrived += p.AmountCents
				if p.AmountCents <= 0 || p.PaidCents < paid || p.PaidCents-paid > p.AmountCents {
					t.Fatalf("order %s: payment %+v after %d cents paid", id, p, paid)
				}
				paid = p.PaidCents
			case domain.CreditDue:
				if p.AmountCents <= 0 {
					t.Fatalf("order %s: credit %+v", id, p)
				}
				credited += p.AmountCents
			}
		}
		s := o.state
		if paid != s.PaidCents || credited != s.CreditCents {
			t.Fatalf("order %s: paid %d credited %d, the order says %d and %d", id, paid, credited, s.PaidCents, s.CreditCents)
		}
		// A cancellation by an operator turns what was paid into a credit too.
		cancelledCredit := int64(0)
		for _, c := range s.Credits {
			if c.Reason == domain.CreditCancelledPartlyPaid {
				cancelledCredit += c.AmountCents
			}
		}
		if arrived+cancelledCredit != s.PaidCents+s.CreditCents {
			t.Fatalf("order %s: %d cents arrived, %d paid and %d credited", id, arrived, s.PaidCents, s.CreditCents)
		}
		if s.PaidCents > s.Quote.TotalCents {
			t.Fatalf("order %s: paid %d of %d cents", id, s.PaidCents, s.Quote.TotalCents)
		}
		if s.Status != domain.StatusNone && (s.Status == domain.StatusPaid) != (s.PaidCents == s.Quote.TotalCents && s.PaidCents > 0) {
			t.Fatalf("order %s: status %s with %d of %d cents", id, s.Status, s.PaidCents, s.Quote.TotalCents)
		}
	}
}

func (w *world) purchasesApplyOnce(t *rapid.T) {
	added := map[uuid.UUID]int{}
	for _, e := range w.subLog {
		if a, ok := e.(domain.SpaceAdded); ok {
			added[a.OrderID]++
		}
	}
	for id, o := range w.orders {
		want := 0
		if o.state.Status == domain.StatusPaid {
			want = 1
		}
		if added[id] != want {
			t.Fatalf("order %s (%s) applied %d times, want %d", id, o.state.Status, added[id], want)
		}
		delete(added, id)
	}
	if len(added) > 0 {
		t.Fatalf("space added for orders that do not exist: %v", added)
	}
}

func (w *world) oneOrderInProgress(t *rapid.T) {
	var inProgress []uuid.UUID
	for _, id := range w.ids {
		if w.orders[id].state.Status.InProgress() {
			inProgress = append(inProgress, id)
		}
	}
	switch {
	case len(inProgress) > 1:
		t.Fatalf("%d orders in progress: %v", len(inProgress), inProgress)
	case len(inProgress) == 1 && w.sub.OpenOrder != inProgress[0]:
		t.Fatalf("order %s in progress, the subscription's slot holds %s", inProgress[0], w.sub.OpenOrder)
	case len(inProgress) == 0 && w.sub.OpenOrder != uuid.Nil:
		t.Fatalf("no order in progress, the slot is held by %s", w.sub.OpenOrder)
	}
}

func (w *world) quotesAddUp(t *rapid.T) {
	for id, o := range w.orders {
		for _, e := range o.events {
			var q domain.Quote
			switch e := e.(type) {
			case domain.SpaceIncreaseRequested:
				q = e.Quote
			case domain.CoTerminationToggled:
				q = e.Quote
			case domain.OrderModified:
				q = e.Quote
			case domain.OrderConfirmed:
				q = e.Quote
			case domain.OrderPaid:
				q = e.Quote
			case domain.QuoteRepriced:
				q = e.Quote
			default:
				continue
			}
			if err := checkQuote(q); err != nil {
				t.Fatalf("order %s, %T: %v", id, e, err)
			}
		}
	}
}

// checkQuote: lines are exact products of integer cents, VAT is taken once on the net by
// the rounding rule, and the total is net plus VAT.
func checkQuote(q domain.Quote) error {
	var net int64
	for _, l := range q.Lines {
		perUnit := l.UnitCents * int64(l.Months) // per unit and month: services, earlier space
		if l.Kind == domain.KindSpace {
			perUnit = l.UnitCents
		}
		if l.NetCents != int64(l.Quantity)*perUnit || l.NetCents < 0 {
			return fmt.Errorf("line %+v is not quantity x price", l)
		}
		if l.NewExpiry != q.NewExpiry {
			return fmt.Errorf("line %+v does not run to the new expiry %s", l, q.NewExpiry)
		}
		net += l.NetCents
	}
	switch {
	case !q.Adds():
		return fmt.Errorf("quote %+v does not add up", q)
	case net != q.NetCents || q.VATCents != domain.VATCents(net, 22) || q.TotalCents != net+q.VATCents:
		return fmt.Errorf("quote %+v: lines %d + VAT %d != total %d", q, net, domain.VATCents(net, 22), q.TotalCents)
	case q.TotalCents <= 0 || q.GB < 1 || q.GB > 100:
		return fmt.Errorf("quote %+v out of range", q)
	}
	return nil
}

// frozenAfterConfirmation: once confirmed, only payments, cancellation and expiry follow,
// and the quote, method and acceptances stay what was confirmed.
func (w *world) frozenAfterConfirmation(t *rapid.T) {
	for id, o := range w.orders {
		var confirmedAt *domain.OrderConfirmed
		for _, e := range o.events {
			if confirmedAt == nil {
				if c, ok := e.(domain.OrderConfirmed); ok {
					confirmedAt = &c
				}
				continue
			}
			switch e.(type) {
			case domain.PaymentRegistered, domain.OrderPaid, domain.OrderCancelled, domain.OrderExpired,
				domain.CreditDue, domain.OrderOverdue:
			default:
				t.Fatalf("order %s: %T after confirmation", id, e)
			}
		}
		if confirmedAt == nil {
			continue
		}
		s := o.state
		if !reflect.DeepEqual(s.Quote, confirmedAt.Quote) || s.PaymentMethod != confirmedAt.PaymentMethod ||
			s.Acceptances != confirmedAt.Acceptances || s.PayBy != confirmedAt.PayBy {
			t.Fatalf("order %s changed after confirmation", id)
		}
		if a := s.Acceptances; !a.GeneralConditions || !a.UnfairTerms || !a.Privacy || a.TermsVersion == "" || s.PaymentMethod == "" {
			t.Fatalf("order %s confirmed without all acceptances and a method: %+v", id, s)
		}
	}
}

// confirmedIsChargedAndGranted: the quote the customer confirmed is what is charged and
// what is granted.
func (w *world) confirmedIsChargedAndGranted(t *rapid.T) {
	for id, o := range w.orders {
		var confirmed *domain.Quote
		for _, e := range o.events {
			switch e := e.(type) {
			case domain.OrderConfirmed:
				confirmed = &e.Quote
			case domain.OrderPaid:
				if confirmed == nil || !reflect.DeepEqual(e.Quote, *confirmed) || e.PaidCents != confirmed.TotalCents {
					t.Fatalf("order %s: paid %+v, confirmed %+v", id, e, confirmed)
				}
			}
		}
		var granted domain.Date
		for _, e := range w.subLog {
			switch e := e.(type) {
			case domain.SpaceAdded:
				// Rule 4: the space runs its year from the day the payment completed.
				if e.OrderID == id && (confirmed == nil || e.GB != confirmed.GB || e.ValidFrom != domain.DateOf(o.state.PaidAt) ||
					e.ValidUntil != e.ValidFrom.AddMonths(12)) {
					t.Fatalf("order %s: granted %+v, confirmed %+v, paid at %s", id, e, confirmed, o.state.PaidAt)
				}
				if e.OrderID == id {
					granted = e.ValidUntil
				}
			case domain.ServicesExtended:
				if e.OrderID != id {
					continue
				}
				if confirmed == nil {
					t.Fatalf("order %s: services extended without a confirmed quote", id)
				}
				for _, x := range e.Services {
					// Aligned to the same day as the space; charged the confirmed months.
					l, ok := line(*confirmed, x.Kind)
					if !ok || x.NewExpiry != granted || x.Months != l.Months || x.Quantity != l.Quantity {
						t.Fatalf("order %s: extended %+v, confirmed %+v", id, x, l)
					}
				}
			}
		}
	}
}

// Properties of the pricing alone.

func TestPropertyEveryQuoteAddsUp(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		orderDate := domain.Date{Year: 2024, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 3*366).Draw(t, "order day"))
		var svcs []domain.Service
		for _, kind := range []string{domain.KindBase, domain.KindUsers, "conservation", "reports"} {
			if rapid.Bool().Draw(t, "has "+kind) {
				svcs = append(svcs, domain.Service{
					Kind:      kind,
					Quantity:  rapid.IntRange(1, 50).Draw(t, "quantity"),
					ExpiresOn: orderDate.AddDays(rapid.IntRange(-400, 800).Draw(t, "days to expiry")),
				})
			}
		}
		gb := rapid.IntRange(1, 100).Draw(t, "gb")
		coTermination := rapid.Bool().Draw(t, "co-termination")
		q, err := cat.Quote(svcs, gb, coTermination, orderDate)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkQuote(q); err != nil {
			t.Fatal(err)
		}
		if q.NewExpiry != orderDate.AddMonths(12) || q.OrderDate != orderDate {
			t.Fatalf("ordered %s, expiring %s", orderDate, q.NewExpiry)
		}
		extended := map[string]domain.QuoteLine{}
		for _, l := range q.ExtendedServices() {
			extended[l.Kind] = l
		}
		for _, s := range svcs {
			l, ok := extended[s.Kind]
			active := !s.ExpiresOn.Before(orderDate) && s.ExpiresOn.Before(q.NewExpiry)
			if ok != (coTermination && active) {
				t.Fatalf("service %+v: extended %v, co-termination %v, active and ending before %s %v", s, ok, coTermination, q.NewExpiry, active)
			}
			if !ok {
				continue
			}
			// Every started month, and no more.
			if l.Months < 1 || s.ExpiresOn.AddMonths(l.Months).Before(q.NewExpiry) || !s.ExpiresOn.AddMonths(l.Months-1).Before(q.NewExpiry) {
				t.Fatalf("service %+v to %s charged %d months", s, q.NewExpiry, l.Months)
			}
		}
	})
}

func TestPropertyVATIsTheNearestCentHalfUp(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		net := rapid.Int64Range(0, 1_000_000_000_00).Draw(t, "net")
		pct := rapid.Int64Range(0, 100).Draw(t, "percent")
		vat := domain.VATCents(net, pct)
		// vat is within half a cent of net*pct/100, a half going up: -50 < 100*vat - net*pct <= 50.
		if d := 100*vat - net*pct; d <= -50 || d > 50 {
			t.Fatalf("VAT %d%% on %d cents is %d", pct, net, vat)
		}
	})
}
