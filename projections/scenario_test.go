package projections

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// commit is what one append writes: events of one stream, at the domain's "now".
type commit struct {
	stream string
	events []domain.Event
	at     time.Time
}

// scenario produces a random but valid history with the real deciders: every event comes
// from domain.DecideSubscription / DecideOrder on the state the earlier events left.
type scenario struct {
	cat *domain.Catalogue
	rng *rand.Rand
	now time.Time
	// fastOrders makes an order's whole cart-to-confirmation one commit (prefills).
	fastOrders bool

	subs   []*genSub
	orders []*genOrder // in progress (not paid, cancelled or expired)
}

type genSub struct {
	id    uuid.UUID
	state domain.Subscription
}

type genOrder struct {
	id    uuid.UUID
	sub   *genSub
	state domain.Order
}

func newScenario(seed uint64) *scenario {
	return &scenario{
		cat: domain.DefaultCatalogue(),
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		now: time.Date(2025, 1, 10, 9, 0, 0, 0, domain.Rome),
	}
}

var methods = []string{domain.MethodCard, domain.MethodPayPal, domain.MethodBankTransfer}

// step advances the clock and returns the commits of one random action (maybe none).
func (g *scenario) step() []commit {
	g.now = g.now.Add(time.Duration(g.rng.IntN(240)) * time.Minute)
	switch p := g.rng.IntN(100); {
	case p < 12 || len(g.subs) == 0:
		return g.open()
	case p < 25:
		s := g.subs[g.rng.IntN(len(g.subs))]
		return g.subCmd(s, domain.ReportUsage{UsedBytes: g.rng.Int64N(3 * BytesPerGB)})
	case p < 45:
		return g.startOrder(g.subs[g.rng.IntN(len(g.subs))])
	case p < 48:
		return g.sweep()
	default:
		if len(g.orders) == 0 {
			return nil
		}
		return g.advance(g.orders[g.rng.IntN(len(g.orders))])
	}
}

func (g *scenario) open() []commit {
	today := domain.DateOf(g.now)
	services := []domain.Service{{Kind: domain.KindBase, Quantity: 1, ExpiresOn: today.AddDays(g.rng.IntN(400) - 20)}}
	if g.rng.IntN(2) == 0 {
		services = append(services, domain.Service{Kind: domain.KindUsers, Quantity: 1 + g.rng.IntN(3), ExpiresOn: today.AddDays(g.rng.IntN(300))})
	}
	if g.rng.IntN(3) == 0 {
		services = append(services, domain.Service{Kind: "conservation", Quantity: 1, ExpiresOn: today.AddDays(g.rng.IntN(300))})
	}
	names := []string{"Rossi S.r.l.", "=HYPERLINK(\"http://x\")", "Bianchi & Figli", "+39 Ditta", "Caffè Verdi, \"Bar\""}
	s := &genSub{id: uuid.New()}
	cs := g.subCmd(s, domain.OpenSubscription{
		SubscriptionID: s.id, OwnerID: "cust-" + s.id.String()[:8],
		Holder:   domain.Holder{Name: names[g.rng.IntN(len(names))], Email: "holder@example.com"},
		Language: "it", Services: services,
	})
	if len(cs) > 0 {
		g.subs = append(g.subs, s)
	}
	return cs
}

func (g *scenario) subCmd(s *genSub, cmd domain.SubscriptionCommand) []commit {
	evs, err := domain.DecideSubscription(g.cat, s.state, cmd, g.now)
	if err != nil || len(evs) == 0 {
		return nil
	}
	for _, e := range evs {
		s.state = domain.EvolveSubscription(s.state, e)
	}
	return []commit{{stream: eventstore.StreamName("subscription", s.id), events: evs, at: g.now}}
}

// orderCmds runs commands on an order and returns one commit of their events.
func (g *scenario) orderCmds(o *genOrder, cmds ...domain.OrderCommand) []commit {
	var all []domain.Event
	for _, cmd := range cmds {
		evs, err := domain.DecideOrder(g.cat, o.state, cmd, g.now)
		if err != nil {
			break
		}
		for _, e := range evs {
			o.state = domain.EvolveOrder(o.state, e)
		}
		all = append(all, evs...)
	}
	if len(all) == 0 {
		return nil
	}
	return []commit{{stream: eventstore.StreamName("order", o.id), events: all, at: g.now}}
}

func (g *scenario) startOrder(s *genSub) []commit {
	o := &genOrder{id: uuid.New(), sub: s}
	cs := g.subCmd(s, domain.ReserveOrderSlot{OrderID: o.id})
	if len(cs) == 0 {
		return nil
	}
	cmds := []domain.OrderCommand{domain.RequestSpaceIncrease{
		OrderID: o.id, Subscription: s.state, GB: 1 + g.rng.IntN(3), Channel: domain.Channels[g.rng.IntN(3)],
	}}
	if g.fastOrders {
		cmds = append(cmds, domain.ProceedToCheckout{}, domain.SelectPaymentMethod{Method: methods[g.rng.IntN(3)]},
			domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2025-01"})
	}
	oc := g.orderCmds(o, cmds...)
	if len(oc) == 0 {
		return append(cs, g.subCmd(s, domain.ReleaseOrderSlot{OrderID: o.id, Reason: "never created"})...)
	}
	g.orders = append(g.orders, o)
	return append(cs, oc...)
}

func (g *scenario) advance(o *genOrder) []commit {
	r := g.rng.IntN(100)
	switch o.state.Status {
	case domain.StatusCart:
		switch {
		case r < 15:
			return g.orderCmds(o, domain.ToggleCoTermination{Enabled: !o.state.Quote.CoTermination})
		case r < 25:
			return g.orderCmds(o, domain.ModifyOrder{GB: 1 + g.rng.IntN(4), CoTermination: g.rng.IntN(2) == 0})
		case r < 30:
			return g.cancel(o)
		default:
			return g.orderCmds(o, domain.ProceedToCheckout{})
		}
	case domain.StatusCheckout:
		switch {
		case r < 10:
			return g.orderCmds(o, domain.ModifyOrder{GB: 1 + g.rng.IntN(4), CoTermination: true})
		case r < 15:
			return g.cancel(o)
		case o.state.PaymentMethod == "" || r < 30:
			return g.orderCmds(o, domain.SelectPaymentMethod{Method: methods[g.rng.IntN(3)]})
		default:
			return g.orderCmds(o, domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2025-01"})
		}
	case domain.StatusConfirmed:
		due := o.state.DueCents()
		switch {
		case r < 8 && o.state.PaidCents == 0:
			return g.cancel(o)
		case r < 40 && due > 1:
			return g.pay(o, 1+g.rng.Int64N(due-1))
		case r < 75:
			return g.pay(o, due)
		}
	}
	return nil
}

func (g *scenario) pay(o *genOrder, cents int64) []commit {
	cs := g.orderCmds(o, domain.RegisterPayment{AmountCents: cents, Method: o.state.PaymentMethod, Reference: uuid.NewString()})
	if o.state.Status == domain.StatusPaid {
		g.drop(o)
		cs = append(cs, g.subCmd(o.sub, domain.ApplyPurchase{OrderID: o.id, Quote: o.state.Quote, PaidAt: g.now})...)
	}
	return cs
}

func (g *scenario) cancel(o *genOrder) []commit {
	cs := g.orderCmds(o, domain.CancelOrder{Reason: "changed my mind"})
	if o.state.Status != domain.StatusCancelled {
		return cs
	}
	g.drop(o)
	return append(cs, g.subCmd(o.sub, domain.ReleaseOrderSlot{OrderID: o.id, Reason: "cancelled"})...)
}

// sweep expires the confirmed orders past their payment term, as the sweeper does.
func (g *scenario) sweep() []commit {
	var cs []commit
	for _, o := range append([]*genOrder(nil), g.orders...) {
		if o.state.Status != domain.StatusConfirmed || !domain.DateOf(g.now).After(o.state.PayBy) {
			continue
		}
		cs = append(cs, g.orderCmds(o, domain.ExpireOrder{})...)
		g.drop(o)
		cs = append(cs, g.subCmd(o.sub, domain.ReleaseOrderSlot{OrderID: o.id, Reason: "expired"})...)
	}
	return cs
}

func (g *scenario) drop(o *genOrder) {
	for i, x := range g.orders {
		if x == o {
			g.orders = append(g.orders[:i], g.orders[i+1:]...)
			return
		}
	}
}

// commits returns at least n events' worth of commits.
func (g *scenario) commits(n int) []commit {
	var out []commit
	events := 0
	for events < n {
		for _, c := range g.step() {
			out = append(out, c)
			events += len(c.events)
		}
	}
	return out
}

var codec = eventstore.DomainCodec()

// envelopes turns commits into envelopes as a store would, positions from after+1, so that
// pure tests need no store.
func envelopes(t testing.TB, cs []commit, after uint64) []eventstore.Envelope {
	var out []eventstore.Envelope
	for i, c := range cs {
		for j, ev := range c.events {
			d, err := codec.Encode(uuid.New(), ev, eventstore.Metadata{OccurredAt: c.at})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, eventstore.Envelope{
				ID: d.ID, Stream: c.stream, Type: d.Type, SchemaVersion: d.SchemaVersion,
				Position: after + uint64(i) + 1, Index: j, Count: len(c.events), RecordedAt: c.at,
				Payload: d.Payload, Metadata: d.Metadata,
			})
		}
	}
	return out
}

// foldAll folds envelopes into fresh models, decoding through the codec as the runner does.
func foldAll(t testing.TB, envs []eventstore.Envelope) *Models {
	ms := NewModels()
	for _, env := range envs {
		ev, err := codec.DecodeDomain(env)
		if err != nil {
			t.Fatal(err)
		}
		ms.Apply(env, ev)
		ms.Position = env.Position
	}
	return ms
}

// startStore starts a real embedded JetStream store in a temporary folder.
func startStore(t testing.TB, dir string) (*jetstream.Embedded, *jetstream.Store) {
	t.Helper()
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := jetstream.Open(context.Background(), e.Conn, jetstream.Options{})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	return e, s
}

// appendAll appends the commits in order and returns the last commit's position.
func appendAll(t testing.TB, s eventstore.Store, cs []commit) uint64 {
	t.Helper()
	var pos uint64
	for _, c := range cs {
		data := make([]eventstore.EventData, len(c.events))
		for i, ev := range c.events {
			d, err := codec.Encode(uuid.New(), ev, eventstore.Metadata{OccurredAt: c.at})
			if err != nil {
				t.Fatal(err)
			}
			data[i] = d
		}
		res, err := s.Append(context.Background(), c.stream, eventstore.Any, data...)
		if err != nil {
			t.Fatal(err)
		}
		pos = res.Position
	}
	return pos
}
