package relay_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/handlers/relay"
)

// What the relay publishes by default is the contract, type for type, and each domain event
// of those types has its mapping (an event added to DefaultTypes without one fails here).
func TestEveryDefaultTypeHasItsContractMessage(t *testing.T) {
	def := slices.Sorted(slices.Values(relay.DefaultTypes()))
	if !slices.Equal(def, notifications.Types()) {
		t.Fatalf("default types %v, contract types %v", def, notifications.Types())
	}
	for _, et := range domain.EventTypes() {
		p, _ := relay.Contract(et.Zero, cat)
		switch {
		case slices.Contains(def, et.Name) && (p == nil || p.MessageType() != et.Name):
			t.Errorf("%s maps to %v", et.Name, p)
		case !slices.Contains(def, et.Name) && p != nil:
			t.Errorf("%s, not published by default, maps to %s", et.Name, p.MessageType())
		}
	}
}

// The confirmation and the payment carry what the emails show, resolved from the catalogue:
// labels, the payment method's details and link, the derived days, with no domain rule left
// for a consumer to apply.
func TestConfirmedAndPaidCarryWhatTheEmailsShow(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	day := domain.Date{Year: 2026, Month: time.March, Day: 10}
	q, err := cat.Quote([]domain.Service{
		{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.Date{Year: 2026, Month: time.June, Day: 30}},
		{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: domain.Date{Year: 2026, Month: time.September, Day: 30}},
	}, 1, true, day)
	if err != nil {
		t.Fatal(err)
	}
	order, sub := uuid.New(), uuid.New()
	rcpt := domain.Recipient{Name: "Jane", Email: "jane@example.com", Language: "en"}
	conf := domain.OrderConfirmed{OrderID: order, SubscriptionID: sub, OwnerID: "cust-1", Quote: q, PaymentMethod: domain.MethodCard,
		Recipient: rcpt, ConfirmedAt: time.Date(2026, 3, 10, 9, 0, 0, 0, domain.Rome), PayBy: day.AddDays(30), ExpectedRegistrationDays: 1}
	paidAt := time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC) // 1 April in Rome
	paid := domain.OrderPaid{OrderID: order, SubscriptionID: sub, Quote: q, Recipient: rcpt, PaidCents: q.TotalCents + 5, ExcessCents: 5, PaidAt: paidAt}
	var data []eventstore.EventData
	for _, ev := range []domain.Event{conf, paid} {
		d, err := codec.Encode(uuid.New(), ev, eventstore.Metadata{CorrelationID: "corr-7"})
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, d)
	}
	if _, err := e.store.Append(ctx, eventstore.StreamName("order", order), eventstore.NoStream, data...); err != nil {
		t.Fatal(err)
	}
	envs, err := e.store.ReadStream(ctx, eventstore.StreamName("order", order), 0)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(env eventstore.Envelope) (*nats.Msg, notifications.Envelope, notifications.Payload) {
		m, err := relay.Encode(relay.DefaultSubjectPrefix, cat, env)
		if err != nil {
			t.Fatal(err)
		}
		h, p, err := notifications.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		return m, h, p
	}

	m, h, p := decode(envs[0])
	if m.Subject != "orders.notifications.OrderConfirmed."+order.String() {
		t.Errorf("subject %s", m.Subject)
	}
	if h.EventID != envs[0].ID || h.OrderID != order || h.SubscriptionID != sub || h.CorrelationID != "corr-7" || !h.OccurredAt.Equal(envs[0].RecordedAt) || h.Version != 1 {
		t.Errorf("envelope %+v", h)
	}
	c := p.(notifications.OrderConfirmedV1)
	base, _ := cat.Services[domain.KindBase]
	if c.Recipient != notifications.Recipient(rcpt) || c.OwnerID != "cust-1" || c.Quote.TotalCents != q.TotalCents || c.Quote.SpaceMonths != 12 ||
		len(c.Quote.Lines) != len(q.Lines) || c.Quote.Lines[0].Kind != notifications.KindSpace || c.Quote.Lines[0].Label != nil ||
		c.Quote.Lines[1].Label["it"] != base.Label["it"] || c.Quote.Lines[1].Label["en"] != base.Label["en"] || base.Label["en"] == "" {
		t.Errorf("confirmation %+v", c)
	}
	card, _ := cat.Method(domain.MethodCard)
	if c.PaymentMethod.Code != domain.MethodCard || c.PaymentMethod.Label["en"] != card.Label["en"] || c.PaymentMethod.Instructions["it"] != card.Instructions["it"] ||
		c.PaymentMethod.PaymentLink == "" || c.PaymentMethod.PaymentLink == card.PaymentLink || c.PaymentMethod.IBAN != "" {
		t.Errorf("payment method %+v (catalogue %+v)", c.PaymentMethod, card)
	}
	if want := conf.ExpectedRegistration(); c.ExpectedRegistrationOn.String() != want.String() || c.PayBy.String() != "2026-04-09" {
		t.Errorf("expected registration %v (want %v), pay by %v", c.ExpectedRegistrationOn, want, c.PayBy)
	}

	_, h, p = decode(envs[1])
	pd := p.(notifications.OrderPaidV1)
	if h.OrderID != order || h.SubscriptionID != sub || pd.PaidCents != q.TotalCents+5 || pd.ExcessCents != 5 || pd.GrantedUntil.String() != "2027-04-01" {
		t.Errorf("paid %+v %+v", h, pd)
	}
}

// With AllTypes, an event without a contract type goes out outside the contract: version 0,
// the stored payload as data; the contract's types go out as their messages.
func TestAllTypesPublishesTheRestOutsideTheContract(t *testing.T) {
	e := start(t)
	stop := runRelayWith(t, e, relay.Options{AllTypes: true})
	ids := appendOrder(t, e.store)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(len(ids)+1))
	stop()
	got := published(t, e.js)
	if len(got) != 4 || got[0].Type != "CheckoutStarted" || got[0].Version != notifications.VersionOutside {
		t.Fatalf("published %+v", got)
	}
	if _, err := got[0].Payload(); err == nil {
		t.Fatal("an event outside the contract decoded as one of its types")
	}
	if !json.Valid(got[0].Data) {
		t.Fatalf("data %s", got[0].Data)
	}
	for _, m := range got[1:] {
		if _, err := m.Payload(); err != nil || m.Version != 1 {
			t.Fatalf("%s v%d: %v", m.Type, m.Version, err)
		}
	}
}

// A relay upgraded over a stream whose last message a relay from before the contract wrote
// (the stored event in the body, no stream headers) resumes after it, within its commit.
func TestRelayResumesAfterALegacyMessage(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	want := appendOrder(t, e.store) // confirmed, then registered+paid in one commit
	all, err := e.store.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.EnsureStream(ctx, e.js, relay.Options{}); err != nil {
		t.Fatal(err)
	}
	var registered eventstore.Envelope
	for _, env := range all {
		if env.ID == want[1] {
			registered = env
		}
	}
	_, agg, _ := eventstore.ParseStream(registered.Stream)
	legacy := nats.NewMsg(notifications.Subject(relay.DefaultSubjectPrefix, registered.Type, agg.String()))
	legacy.Data, _ = json.Marshal(map[string]any{"eventId": registered.ID, "type": registered.Type, "schemaVersion": 1,
		"stream": registered.Stream, "streamVersion": registered.StreamVersion, "position": registered.Position,
		"index": registered.Index, "payload": registered.Payload})
	legacy.Header.Set(relay.HeaderPosition, strconv.FormatUint(registered.Position, 10))
	legacy.Header.Set(relay.HeaderIndex, strconv.Itoa(registered.Index))
	if _, err := e.js.PublishMsg(ctx, legacy, jetstream.WithMsgID(registered.ID.String())); err != nil {
		t.Fatal(err)
	}
	cp, err := relay.LastPublished(ctx, mustStream(t, e.js))
	if err != nil || cp.Stream != registered.Stream || cp.StreamVersion != registered.StreamVersion || cp.Index != registered.Index {
		t.Fatalf("checkpoint %+v, %v", cp, err)
	}
	// Published in log order: a wrongful republish of the confirmation would come before the
	// payment, and show as the second message.
	stop := runRelay(t, e)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, 2)
	stop()
	info, _ := mustStream(t, e.js).Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("%d messages, want the legacy one and the payment after it", info.State.Msgs)
	}
	last, err := mustStream(t, e.js).GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := notifications.Parse(last.Data); err != nil || h.EventID != want[2] {
		t.Fatalf("last message %+v, %v; want event %s", h, err, want[2])
	}
}

// BenchmarkEncodeOrderConfirmed: the cost of building one message, decode and mapping
// included (go test -run X -bench EncodeOrderConfirmed ./handlers/relay).
func BenchmarkEncodeOrderConfirmed(b *testing.B) {
	day := domain.Date{Year: 2026, Month: time.March, Day: 10}
	q, err := cat.Quote([]domain.Service{
		{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.Date{Year: 2026, Month: time.June, Day: 30}},
		{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: domain.Date{Year: 2026, Month: time.September, Day: 30}},
	}, 1, true, day)
	if err != nil {
		b.Fatal(err)
	}
	order := uuid.New()
	d, err := codec.Encode(uuid.New(), domain.OrderConfirmed{OrderID: order, SubscriptionID: uuid.New(), Quote: q, PaymentMethod: domain.MethodBankTransfer,
		Recipient: domain.Recipient{Name: "Mario", Email: "m@example.it", Language: "it"}, PayBy: day.AddDays(30)}, eventstore.Metadata{CorrelationID: "c"})
	if err != nil {
		b.Fatal(err)
	}
	env := eventstore.Envelope{ID: d.ID, Type: d.Type, SchemaVersion: d.SchemaVersion, Payload: d.Payload, Metadata: d.Metadata,
		Stream: eventstore.StreamName("order", order), StreamVersion: 3, Position: 7, RecordedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := relay.Encode(relay.DefaultSubjectPrefix, cat, env); err != nil {
			b.Fatal(err)
		}
	}
}

// An event of a contract type that this build cannot map (here a schema version from a
// newer build) does not hold back what follows it: it goes out outside the contract, with
// the reason in a header, and the next events go out as their messages.
func TestAnUnmappableEventGoesOutsideTheContractAndHoldsNothingBack(t *testing.T) {
	e := start(t)
	stop := runRelayWith(t, e, relay.Options{})
	order := uuid.New()
	newer := eventstore.EventData{ID: uuid.New(), Type: "OrderConfirmed", SchemaVersion: 99,
		Payload: json.RawMessage(`{"orderId":"` + order.String() + `","shape":"of a newer build"}`)}
	if _, err := e.store.Append(context.Background(), eventstore.StreamName("order", order), eventstore.NoStream, newer); err != nil {
		t.Fatal(err)
	}
	ids := appendOrder(t, e.store)
	jstest.WaitMessages(t, e.js, relay.DefaultStream, uint64(1+len(ids))) // ids: the events appendOrder's order publishes
	stop()
	got := published(t, e.js)
	if len(got) != 1+len(ids) || got[0].EventID != newer.ID || got[0].Version != notifications.VersionOutside ||
		!strings.Contains(got[0].Header.Get(relay.HeaderContractError), "99") {
		t.Fatalf("published %+v", got)
	}
	if got[0].OrderID != order {
		t.Errorf("the message outside the contract names order %s, want %s", got[0].OrderID, order)
	}
	for _, m := range got[1:] {
		if m.Version != 1 || m.Header.Get(relay.HeaderContractError) != "" {
			t.Errorf("after it: %s version %d, error %q", m.Type, m.Version, m.Header.Get(relay.HeaderContractError))
		}
	}
}
