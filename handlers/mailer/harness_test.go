package mailer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	esjs "github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/emaillog"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/relay"
)

// harness runs the real pieces: an embedded NATS server with JetStream in a temporary
// folder, the JetStream event store, the relay, and an SMTP server on loopback.
type harness struct {
	t     testing.TB
	emb   *esjs.Embedded
	store *esjs.Store
	js    jetstream.JetStream
	smtp  *smtpServer
	cat   *domain.Catalogue
	cmds  *command.Handler
}

func newHarness(t testing.TB, listen string) *harness {
	return newHarnessSync(t, listen, true)
}

// newHarnessSync chooses whether the server fsyncs every write (the product's default) or not.
func newHarnessSync(t testing.TB, listen string, relaxed bool) *harness {
	t.Helper()
	emb, store := jstest.Start(t, esjs.EmbeddedConfig{RelaxedSync: relaxed, Listen: listen})
	js, err := jetstream.New(emb.Conn)
	if err != nil {
		t.Fatal(err)
	}
	cat := domain.DefaultCatalogue()
	h := &harness{t: t, emb: emb, store: store, js: js, smtp: startSMTP(t), cat: cat,
		cmds: command.New(store, command.Options{Catalogue: cat})}
	h.runRelay()
	return h
}

func (h *harness) runRelay() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := relay.New(h.store, h.js, relay.Options{RetryDelay: 20 * time.Millisecond})
	if _, err := relay.EnsureStream(ctx, h.js, relay.Options{}); err != nil {
		h.t.Fatal(err)
	}
	go func() { defer close(done); _ = r.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

// conn is a connection of the mailer's own, so that closing it is like the mailer dying.
func (h *harness) conn() *nats.Conn {
	h.t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(h.emb.Server))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

func (h *harness) config(sender mailer.Sender) mailer.Config {
	return mailer.Config{
		Ledger:      emaillog.New(h.cmds),
		Sender:      sender,
		From:        "Fatturazione Elettronica <noreply@fe.example.com>",
		Backoff:     []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
		AckWait:     2 * time.Second,
		Attempts:    1000,
		Concurrency: 4,
		Logger:      zaptest.NewLogger(h.t, zaptest.Level(zap.WarnLevel)),
		Registerer:  prometheus.NewRegistry(),
		Now:         func() time.Time { return mailDay },
	}
}

// mailDay is when the harness's mailers run: the day the orders below are confirmed.
var mailDay = time.Date(2026, 3, 10, 12, 0, 0, 0, domain.Rome)

func (h *harness) smtpSender() *mailer.SMTPSender {
	h.t.Helper()
	host, port := h.smtp.hostPort()
	s, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: host, Port: port, TLS: mailer.TLSNone, Timeout: time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// runMailer starts a mailer on its own connection; stop cancels it and closes the connection.
func (h *harness) runMailer(cfg mailer.Config) (m *mailer.Mailer, stop func()) {
	h.t.Helper()
	nc := h.conn()
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err = mailer.New(js, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return m, func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			h.t.Errorf("mailer Run: %v", err)
		}
		nc.Close()
	}
}

var codec = eventstore.DomainCodec()

func (h *harness) append(stream string, evs ...domain.Event) []uuid.UUID {
	h.t.Helper()
	var data []eventstore.EventData
	var ids []uuid.UUID
	for _, ev := range evs {
		id := uuid.New()
		d, err := codec.Encode(id, ev, eventstore.Metadata{Actor: "test", Channel: "panel", CorrelationID: uuid.NewString()})
		if err != nil {
			h.t.Fatal(err)
		}
		data, ids = append(data, d), append(ids, id)
	}
	if _, err := h.store.Append(context.Background(), stream, eventstore.Any, data...); err != nil {
		h.t.Fatal(err)
	}
	return ids
}

var orderDate = domain.Date{Year: 2026, Month: time.March, Day: 10}

// confirmed builds an order confirmation: 1 GB with co-termination of the base service and
// two additional users.
func confirmed(t testing.TB, cat *domain.Catalogue, name, email, lang, method string) domain.OrderConfirmed {
	t.Helper()
	q, err := cat.Quote([]domain.Service{
		{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.Date{Year: 2026, Month: time.June, Day: 30}},
		{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: domain.Date{Year: 2026, Month: time.September, Day: 30}},
	}, 1, true, orderDate)
	if err != nil {
		t.Fatal(err)
	}
	return domain.OrderConfirmed{
		OrderID:        uuid.New(),
		SubscriptionID: uuid.New(),
		OwnerID:        "cust-1",
		Quote:          q,
		PaymentMethod:  method,
		Recipient:      domain.Recipient{Name: name, Email: email, Language: lang},
		ConfirmedAt:    time.Date(2026, 3, 10, 9, 0, 0, 0, domain.Rome),
		PayBy:          orderDate.AddDays(cat.PaymentTermDays),
	}
}

func (h *harness) confirm(ev domain.OrderConfirmed) uuid.UUID {
	return h.append(eventstore.StreamName("order", ev.OrderID), ev)[0]
}

func (h *harness) pay(c domain.OrderConfirmed) []uuid.UUID {
	return h.append(eventstore.StreamName("order", c.OrderID),
		domain.PaymentRegistered{AmountCents: c.Quote.TotalCents, Method: c.PaymentMethod, Reference: "tx-1", PaidCents: c.Quote.TotalCents},
		domain.OrderPaid{OrderID: c.OrderID, SubscriptionID: c.SubscriptionID, Quote: c.Quote, Recipient: c.Recipient,
			PaidCents: c.Quote.TotalCents, PaidAt: time.Date(2026, 3, 11, 10, 0, 0, 0, domain.Rome)})
}

// log reads the whole event log.
func (h *harness) log() []eventstore.Envelope {
	h.t.Helper()
	var all []eventstore.Envelope
	for after := uint64(0); ; {
		page, err := h.store.ReadAll(context.Background(), after, 1000)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// sentLog counts the emails the log records as sent.
func (h *harness) sentLog() int {
	h.t.Helper()
	n := 0
	for _, env := range h.log() {
		if env.Type == "EmailSent" {
			n++
		}
	}
	return n
}

// byMessageID counts the emails per Message-ID and fails on any duplicate.
func onceEach(t testing.TB, got []received) map[string]received {
	t.Helper()
	out := map[string]received{}
	for _, m := range got {
		id := m.Header.Get("Message-Id")
		if _, dup := out[id]; dup {
			t.Fatalf("email %s (%s) arrived twice", id, m.Subject)
		}
		out[id] = m
	}
	return out
}

func contains(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s lacks %q:\n%s", what, p, s)
		}
	}
}
