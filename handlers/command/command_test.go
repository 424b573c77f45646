package command_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/internal/testwait"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
)

func openStore(t *testing.T) eventstore.Store {
	_, s := jstest.Start(t, jstest.Relaxed)
	return s
}

var meta = command.Meta{CorrelationID: "c-1", CausationID: "r-1", Actor: "cust", Channel: "app"}

func openSub(t *testing.T, h *command.Handler) uuid.UUID {
	t.Helper()
	id := uuid.New()
	next := domain.DateOf(time.Now()).AddMonths(6)
	_, _, err := h.ExecuteSubscription(t.Context(), id, domain.OpenSubscription{
		SubscriptionID: id, OwnerID: "cust", Holder: domain.Holder{Name: "Mario", Email: "m@example.com"}, Language: "it",
		Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: next}, {Kind: "users", Quantity: 1, ExpiresOn: next.AddMonths(-2)}},
	}, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newOrder(t *testing.T, h *command.Handler) (subID, orderID uuid.UUID) {
	t.Helper()
	subID = openSub(t, h)
	orderID, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	return subID, orderID
}

func exec(t *testing.T, h *command.Handler, id uuid.UUID, cmd domain.OrderCommand) command.Result {
	t.Helper()
	res, _, err := h.ExecuteOrder(t.Context(), id, cmd, meta, nil)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return res
}

// Two processes (two handlers, two caches) over one store: a stale cache costs a reload,
// never a wrong answer.
func TestStaleCacheIsReloaded(t *testing.T) {
	store := openStore(t)
	a, b := command.New(store, command.Options{}), command.New(store, command.Options{})
	_, id := newOrder(t, a)
	if _, _, _, err := a.Order(t.Context(), id); err != nil { // a caches the cart
		t.Fatal(err)
	}
	exec(t, b, id, domain.ToggleCoTermination{Enabled: false})
	// a's cached cart still says co-termination on: the append conflicts, a reloads, decides again.
	res := exec(t, a, id, domain.ProceedToCheckout{})
	if res.Version != 2 || !res.Appended {
		t.Fatalf("checkout after a stale cache: %+v", res)
	}
	// b's cache still has the cart: a wrong-state refusal is only given on fresh state.
	res = exec(t, b, id, domain.SelectPaymentMethod{Method: "card"})
	if res.Version != 3 {
		t.Fatalf("payment method from the stale handler: %+v", res)
	}
	o, ver, ok, err := a.Order(t.Context(), id)
	if err != nil || !ok {
		t.Fatal(err)
	}
	_, ver2, _, _ := b.Order(t.Context(), id)
	if o.Quote.CoTermination || o.Status != domain.StatusCheckout || ver2 != 3 || ver > ver2 {
		t.Fatalf("state after both: %+v versions %d %d", o, ver, ver2)
	}
	envs, err := store.ReadStream(t.Context(), eventstore.StreamName(command.OrderCategory, id), 0)
	if err != nil || len(envs) != 4 {
		t.Fatalf("%d events, %v", len(envs), err)
	}
	// The hash chain links every event to the one before, across the two handlers.
	for i := 1; i < len(envs); i++ {
		if envs[i].Metadata.PrevHash != eventstore.HashEnvelope(envs[i-1]) {
			t.Fatalf("event %d does not chain to %d", i, i-1)
		}
	}
	for _, env := range envs {
		if env.Metadata.CorrelationID != "c-1" || env.Metadata.Actor != "cust" || env.Metadata.Channel != "app" || env.Metadata.CausationID != "r-1" {
			t.Fatalf("metadata %+v", env.Metadata)
		}
	}
}

// Commands racing on one order from two handlers: each either lands or answers
// ErrConflict after its bounded retries; the versions they report are distinct and the
// log holds exactly the accepted ones.
func TestConcurrentCommandsRetryThenConflict(t *testing.T) {
	store := openStore(t)
	a := command.New(store, command.Options{MaxRetries: 2})
	b := command.New(store, command.Options{MaxRetries: 2})
	_, id := newOrder(t, a)
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[uint64]bool{}
	conflicts := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := a
			if i%2 == 1 {
				h = b
			}
			res, _, err := h.ExecuteOrder(context.Background(), id, domain.ModifyOrder{GB: 1 + i%5, CoTermination: i%3 == 0}, meta, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, command.ErrConflict):
				conflicts++
			case err != nil:
				t.Error(err)
			default:
				if versions[res.Version] {
					t.Errorf("version %d reported twice", res.Version)
				}
				versions[res.Version] = true
			}
		}()
	}
	wg.Wait()
	envs, err := store.ReadStream(t.Context(), eventstore.StreamName(command.OrderCategory, id), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs)-1 != len(versions) || len(versions)+conflicts != 40 {
		t.Fatalf("%d modifications in the log, %d accepted, %d conflicts", len(envs)-1, len(versions), conflicts)
	}
	t.Logf("%d accepted, %d answered ErrConflict", len(versions), conflicts)
}

func TestIfMatch(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	_, id := newOrder(t, h)
	stale := uint64(5)
	if _, _, err := h.ExecuteOrder(t.Context(), id, domain.ProceedToCheckout{}, meta, &stale); !errors.Is(err, command.ErrPreconditionFailed) {
		t.Fatalf("stale If-Match: %v", err)
	}
	// Another handler moved the order on: the first handler's cache is behind the caller.
	other := command.New(store, command.Options{})
	exec(t, other, id, domain.ToggleCoTermination{Enabled: false})
	current := uint64(1)
	if _, _, err := h.ExecuteOrder(t.Context(), id, domain.ProceedToCheckout{}, meta, &current); err != nil {
		t.Fatalf("current If-Match refused: %v", err)
	}
}

// An order that ended holds its slot only until the next request looks: it need not wait
// for the process manager that releases it.
func TestAnEndedOrderDoesNotBlockTheNext(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	subID, id := newOrder(t, h)
	exec(t, h, id, domain.CancelOrder{Reason: "changed my mind"})
	if _, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "panel"}, meta); err != nil {
		t.Fatalf("after a cancellation, with no process manager running: %v", err)
	}
	if _, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "panel"}, meta); !errors.Is(err, domain.ErrOrderInProgress) {
		t.Fatalf("a live order must still block the next: %v", err)
	}
}

// The payment's answer covers the grant: the space is on the subscription at once, at or
// before the position the payment answered, and the process manager adds nothing.
func TestPaymentGrantsTheSpaceAtOnce(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	subID, id := newOrder(t, h)
	exec(t, h, id, domain.ProceedToCheckout{})
	exec(t, h, id, domain.SelectPaymentMethod{Method: "card"})
	exec(t, h, id, domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "v1"})
	o, _, _, _ := h.Order(t.Context(), id)
	res, _, err := h.ExecuteOrder(t.Context(), id, domain.RegisterPayment{AmountCents: o.Quote.TotalCents, Method: "card", Reference: "T1"}, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	envs, err := store.ReadStream(t.Context(), eventstore.StreamName(command.SubscriptionCategory, subID), 0)
	if err != nil {
		t.Fatal(err)
	}
	last := envs[len(envs)-1]
	if last.Type != "SpaceAdded" && last.Type != "ServicesExtended" || last.Position != res.Position {
		t.Fatalf("after the payment the subscription ends with %s at %d; the payment answered position %d", last.Type, last.Position, res.Position)
	}
	orderEnvs, _ := store.ReadStream(t.Context(), eventstore.StreamName(command.OrderCategory, id), 0)
	paid := orderEnvs[len(orderEnvs)-1]
	for _, env := range envs {
		if env.Type == "SpaceAdded" && (paid.Type != "OrderPaid" || env.Metadata.CausationID != paid.ID.String()) {
			t.Fatalf("the grant's cause is %q, want the OrderPaid event %s", env.Metadata.CausationID, paid.ID)
		}
	}
	s, _, _, _ := command.New(store, command.Options{}).Subscription(t.Context(), subID)
	if len(s.Space) != 1 || s.OpenOrder != uuid.Nil {
		t.Fatalf("space %+v, open order %s", s.Space, s.OpenOrder)
	}
}

// A crash between the order's payment and the purchase loses nothing: the process manager
// started later applies it; replayed from zero, it applies nothing twice.
func TestPurchasesApplyOnceAcrossRestarts(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{DeferGrants: true})
	subID, id := newOrder(t, h)
	exec(t, h, id, domain.ProceedToCheckout{})
	exec(t, h, id, domain.SelectPaymentMethod{Method: "card"})
	exec(t, h, id, domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "v1"})
	o, _, _, _ := h.Order(t.Context(), id)
	exec(t, h, id, domain.RegisterPayment{AmountCents: o.Quote.TotalCents, Method: "card", Reference: "T1"})
	// A paid order is no longer in progress: even before the process manager has applied
	// it, a new order may start (the request frees the slot itself). Cancelled at once.
	next, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatalf("a paid order still blocks a new one: %v", err)
	}
	exec(t, h, next, domain.CancelOrder{Reason: "testing"})

	checkpoint := filepath.Join(t.TempDir(), "purchases")
	runUntil := func(cond func(domain.Subscription) bool) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		pm := command.NewPurchases(command.New(store, command.Options{}), checkpoint)
		go func() { done <- pm.Run(ctx) }()
		// Done when the condition holds and the process manager has read the whole log, so
		// that a second run has nothing left to do.
		testwait.Check(t, "the process manager to act and read the whole log", func() error {
			s, _, _, err := command.New(store, command.Options{}).Subscription(t.Context(), subID)
			if err != nil {
				return err
			}
			if head, _ := store.Head(t.Context()); !cond(s) || pm.Position() < head {
				return fmt.Errorf("subscription %+v, process manager at %d of %d", s, pm.Position(), head)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Stopping saves the checkpoint where the process manager stood.
		head, _ := store.Head(t.Context())
		if pos, err := command.FileCheckpoint(checkpoint).Load(); err != nil || pos == 0 || pos > head {
			t.Fatalf("checkpoint at %d after stopping (head %d): %v", pos, head, err)
		}
	}
	runUntil(func(s domain.Subscription) bool { return len(s.Space) == 1 && s.OpenOrder == uuid.Nil })

	second, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatalf("after the purchase a new order may start: %v", err)
	}
	exec(t, h, second, domain.CancelOrder{Reason: "changed my mind"})
	runUntil(func(s domain.Subscription) bool { return s.OpenOrder == uuid.Nil && len(s.Space) == 1 })

	// Replay the whole log from zero. Three orders took the slot: the paid one (freed by
	// the next request) and two cancelled ones (freed by the process manager).
	if err := os.Remove(checkpoint); err != nil {
		t.Fatal(err)
	}
	runUntil(func(s domain.Subscription) bool { return true })
	envs, err := store.ReadStream(t.Context(), eventstore.StreamName(command.SubscriptionCategory, subID), 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range envs {
		counts[e.Type]++
	}
	if counts["SpaceAdded"] != 1 || counts["ServicesExtended"] != 1 || counts["OrderSlotReleased"] != 3 || counts["OrderSlotReserved"] != 3 {
		t.Fatalf("subscription events after a replay: %v", counts)
	}
}

// The sweeper expires a confirmed order past its term and abandons a cart untouched for
// the catalogue's days.
func TestSweeperExpiresOverdueOrdersAndAbandonsCarts(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	_, id := newOrder(t, h)
	exec(t, h, id, domain.ProceedToCheckout{})
	exec(t, h, id, domain.SelectPaymentMethod{Method: "bank-transfer"})
	exec(t, h, id, domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "v1"})
	_, paidID := newOrder(t, h)

	overdue := func(time.Time) []uuid.UUID { return []uuid.UUID{id, paidID, uuid.New()} }
	if n := command.NewSweeper(h, overdue, time.Hour).Sweep(t.Context()); n != 0 {
		t.Fatalf("expired %d orders before their term", n)
	}
	later := command.New(store, command.Options{Clock: func() time.Time { return time.Now().AddDate(0, 0, 32) }})
	if n := command.NewSweeper(later, overdue, time.Hour).Sweep(t.Context()); n != 2 {
		t.Fatalf("swept %d orders, want 2 (the unknown order is left alone)", n)
	}
	o, _, _, _ := later.Order(t.Context(), id)
	if o.Status != domain.StatusExpired {
		t.Fatalf("status %s", o.Status)
	}
	if cart, _, _, _ := later.Order(t.Context(), paidID); cart.Status != domain.StatusAbandoned {
		t.Fatalf("cart status %s, want abandoned", cart.Status)
	}
	if n := command.NewSweeper(later, overdue, time.Hour).Sweep(t.Context()); n != 0 {
		t.Fatalf("expired again: %d", n)
	}
}

// Rule 1 at the handler: a confirmation on a later day than the quote's is refused with the
// new quote, which is recorded (QuoteRepriced), so that confirming it the same day works.
func TestConfirmOnALaterDayRecordsTheNewQuote(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	_, id := newOrder(t, h)
	exec(t, h, id, domain.ProceedToCheckout{})
	exec(t, h, id, domain.SelectPaymentMethod{Method: "card"})
	later := command.New(store, command.Options{Clock: func() time.Time { return time.Now().AddDate(0, 0, 3) }})
	confirm := domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "v1"}
	_, o, err := later.ExecuteOrder(t.Context(), id, confirm, meta, nil)
	var changed *domain.QuoteChangedError
	if !errors.As(err, &changed) || o.Status != domain.StatusCheckout {
		t.Fatalf("confirm 3 days later: %v, status %s", err, o.Status)
	}
	day := domain.DateOf(time.Now().AddDate(0, 0, 3))
	if changed.Quote.OrderDate != day || o.Quote.OrderDate != day {
		t.Fatalf("new quote of %s, order's %s, want %s", changed.Quote.OrderDate, o.Quote.OrderDate, day)
	}
	total := changed.Quote.TotalCents
	confirm.ExpectedTotalCents = &total
	if _, o, err = later.ExecuteOrder(t.Context(), id, confirm, meta, nil); err != nil || o.Status != domain.StatusConfirmed {
		t.Fatalf("confirm the new quote: %v", err)
	}
}

// Rule 3 at the handler: a new order on a subscription whose cart was abandoned (and not
// swept yet) ends that cart and goes ahead.
func TestANewOrderEndsAnAbandonedCart(t *testing.T) {
	store := openStore(t)
	h := command.New(store, command.Options{})
	subID, first := newOrder(t, h)
	later := command.New(store, command.Options{Clock: func() time.Time { return time.Now().AddDate(0, 0, 8) }})
	second, _, _, err := later.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatalf("a new order 8 days after an untouched cart: %v", err)
	}
	if o, _, _, _ := later.Order(t.Context(), first); o.Status != domain.StatusAbandoned || second == first {
		t.Fatalf("first order %s", o.Status)
	}
	if _, _, _, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta); !errors.Is(err, domain.ErrOrderInProgress) {
		t.Fatalf("a third order the same day: %v", err)
	}
}

// With other writers on the store (Options.Shared), a handler checks its cached aggregate
// against the stream's last version before it answers: a read, or a command that decides
// nothing, tells the stream's state, not the cache's. Without it, the cache answers.
func TestSharedHandlerAnswersFromTheStream(t *testing.T) {
	store := openStore(t)
	reg := prometheus.NewRegistry()
	a := command.New(store, command.Options{})
	shared := command.New(store, command.Options{Shared: true, Registerer: reg})
	alone := command.New(store, command.Options{})
	_, id := newOrder(t, a)
	exec(t, a, id, domain.ToggleCoTermination{Enabled: false})
	for _, h := range []*command.Handler{shared, alone} {
		if _, v, _, err := h.Order(t.Context(), id); err != nil || v != 1 { // both cache the cart, co-termination off
			t.Fatalf("version %d, %v", v, err)
		}
	}
	exec(t, a, id, domain.ToggleCoTermination{Enabled: true})
	if o, v, _, err := shared.Order(t.Context(), id); err != nil || v != 2 || !o.Quote.CoTermination {
		t.Fatalf("the shared handler answers version %d, co-termination %v (%v), want 2, on", v, o.Quote.CoTermination, err)
	}
	// Switching co-termination off: on the alone handler's cache it is off already, so it
	// decides nothing and answers "done" on a state the stream has left; the shared handler
	// decides on the stream's state and records the change.
	if res, _, err := alone.ExecuteOrder(t.Context(), id, domain.ToggleCoTermination{Enabled: false}, meta, nil); err != nil || res.Appended || res.Version != 1 {
		t.Fatalf("the alone handler: %+v %v, want nothing appended at its cached version 1 (else this test proves nothing)", res, err)
	}
	res, o, err := shared.ExecuteOrder(t.Context(), id, domain.ToggleCoTermination{Enabled: false}, meta, nil)
	if err != nil || !res.Appended || res.Version != 3 || o.Quote.CoTermination {
		t.Fatalf("the shared handler: %+v co-termination %v, %v; want version 3 appended, off", res, o.Quote.CoTermination, err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "orders_cache_checks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					checks[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if checks["stale"] != 1 || checks["current"] != 1 {
		t.Fatalf("cache checks %v, want 1 stale (the read) and 1 current (the command)", checks)
	}
}

// An order is opened one way, whatever is bought: OpenOrder binds the command to the new
// order and the subscription, after taking the subscription's order slot for it.
// ExecuteOrder refuses a command that opens an order, which would skip the slot.
func TestOrdersAreOpenedOnlyThroughOpenOrder(t *testing.T) {
	h := command.New(openStore(t), command.Options{})
	subID := openSub(t, h)
	id, res, o, err := h.OpenOrder(t.Context(), subID, domain.RequestSpaceIncrease{GB: 2, Channel: "panel"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != id || o.SubscriptionID != subID || o.Quote.GB != 2 || o.Channel != "panel" || o.Status != domain.StatusCart || !res.Appended {
		t.Fatalf("opened %s: %+v", id, o)
	}
	s, _, _, err := h.Subscription(t.Context(), subID)
	if err != nil || s.OpenOrder != id {
		t.Fatalf("the slot holds %s, want the new order %s (%v)", s.OpenOrder, id, err)
	}
	other := uuid.New()
	_, _, err = h.ExecuteOrder(t.Context(), other, domain.RequestSpaceIncrease{OrderID: other, Subscription: s, GB: 1, Channel: "app"}, meta, nil)
	if err == nil || !strings.Contains(err.Error(), "OpenOrder") {
		t.Fatalf("ExecuteOrder opened an order around the slot: %v", err)
	}
	if _, _, ok, _ := h.Order(t.Context(), other); ok {
		t.Fatal("an order exists that holds no slot")
	}
}

// UpdateOrder builds the command on the state it is decided on, in the command's one load:
// after a conflict it builds again on the new state; its refusal is answered as is, writes
// nothing and is no command (not counted in the command metrics).
func TestUpdateOrderBuildsOnTheDecidedState(t *testing.T) {
	store := openStore(t)
	reg := prometheus.NewRegistry()
	a, b := command.New(store, command.Options{Registerer: reg}), command.New(store, command.Options{})
	_, id := newOrder(t, a)
	if _, _, _, err := a.Order(t.Context(), id); err != nil { // a caches the cart, co-termination on
		t.Fatal(err)
	}
	exec(t, b, id, domain.ToggleCoTermination{Enabled: false})

	var seen []bool
	modify := func(o domain.Order, m *command.Meta) (domain.OrderCommand, error) {
		seen = append(seen, o.Quote.CoTermination)
		m.Channel = o.Channel
		return domain.ModifyOrder{GB: 2, CoTermination: o.Quote.CoTermination}, nil
	}
	res, o, err := a.UpdateOrder(t.Context(), id, command.Meta{Actor: "cust"}, nil, modify)
	if err != nil || !res.Appended || res.Version != 2 {
		t.Fatalf("update: %+v, %v", res, err)
	}
	if len(seen) != 2 || !seen[0] || seen[1] || o.Quote.CoTermination || o.Quote.GB != 2 {
		t.Fatalf("built on co-termination %v, decided %+v: want built again on the stream's state (off), and kept off", seen, o.Quote)
	}
	envs, err := store.ReadStream(t.Context(), eventstore.StreamName(command.OrderCategory, id), 2)
	if err != nil || len(envs) != 1 || envs[0].Metadata.Channel != "app" {
		t.Fatalf("the modification's events: %+v, %v; want one, with the channel the builder set", envs, err)
	}

	commands := func() float64 {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0.0
		for _, f := range families {
			if f.GetName() == "orders_commands_total" {
				for _, m := range f.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	before := commands()
	notYours := errors.New("not yours")
	_, _, err = a.UpdateOrder(t.Context(), id, meta, nil, func(domain.Order, *command.Meta) (domain.OrderCommand, error) {
		return nil, notYours
	})
	if !errors.Is(err, notYours) {
		t.Fatalf("a refusal by the builder answered %v", err)
	}
	if _, v, _, err := a.Order(t.Context(), id); err != nil || v != 2 {
		t.Fatalf("version %d after a refusal (%v), want 2", v, err)
	}
	if n := commands(); n != before {
		t.Fatalf("a refusal by the builder counted as a command: %v commands, %v before", n, before)
	}
}
