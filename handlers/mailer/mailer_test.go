package mailer_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/handlers/relay"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func TestInstructionsInItalianByBankTransfer(t *testing.T) {
	h := newHarness(t, "")
	_, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	c := confirmed(t, h.cat, "Mario Rossi", "mario.rossi@example.it", "it", domain.MethodBankTransfer)
	eventID := h.confirm(c)

	m := h.smtp.waitN(t, 1, 10*time.Second)[0]
	order := c.OrderID.String()
	if len(m.To) != 1 || m.To[0] != "mario.rossi@example.it" {
		t.Fatalf("recipient %v", m.To)
	}
	if got := m.Header.Get("To"); !strings.Contains(got, "Mario Rossi") || !strings.Contains(got, "<mario.rossi@example.it>") {
		t.Errorf("To: %q", got)
	}
	if got, want := m.Header.Get("Message-Id"), "<"+eventID.String()+"@fe.example.com>"; got != want {
		t.Errorf("Message-ID %q, want %q", got, want)
	}
	contains(t, "subject", m.Subject, "Ordine "+order, "istruzioni per il pagamento")
	for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
		contains(t, part, body,
			order,
			"Gentile Mario Rossi",
			"25,00 €", "22,50 €", "12,00 €", // space, base service 9 months, 2 users 6 months
			"59,50 €", "IVA 22%", "13,09 €", "72,59 €",
			"09/04/2026", // pay by
			"Bonifico bancario",
			"Fatturazione Elettronica S.p.A.",
			"IT60X0542811101000000123456",
			"Ordine "+order, // the payment reason
		)
		if strings.Contains(body, "https://pay.example.com") {
			t.Errorf("%s: a bank transfer has no payment link", part)
		}
	}
}

func TestInstructionsInEnglishByCardWithLink(t *testing.T) {
	h := newHarness(t, "")
	_, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	c := confirmed(t, h.cat, "Jane Smith", "jane@example.com", "en", domain.MethodCard)
	h.confirm(c)
	m := h.smtp.waitN(t, 1, 10*time.Second)[0]
	order := c.OrderID.String()
	contains(t, "subject", m.Subject, "Order "+order, "how to pay")
	contains(t, "text", m.Text, "Dear Jane Smith", "€25.00", "€59.50", "VAT 22%", "€13.09", "€72.59",
		"9 April 2026", "Credit card", "https://pay.example.com/orders/"+order)
	contains(t, "html", m.HTML, `href="https://pay.example.com/orders/`+order+`"`, "€72.59")
	if strings.Contains(m.Text, "IBAN") || strings.Contains(m.Text, "Totale") {
		t.Errorf("English card email has Italian or bank transfer text:\n%s", m.Text)
	}
}

func TestPaidOrderGetsNoInstructionsOnlyAReceipt(t *testing.T) {
	h := newHarness(t, "")
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodCard)
	h.confirm(c)
	paidIDs := h.pay(c)
	// The relay has published both before the mailer starts (it was down, say).
	jstest.WaitMessages(t, h.js, notifications.DefaultStream, 3)
	m, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	h.smtp.waitN(t, 1, 10*time.Second)
	// Every notification settled: whatever the mailer was to send for them, it has sent.
	waitSettled(t, h.js)
	got := h.smtp.messages()
	if len(got) != 1 {
		t.Fatalf("%d emails, want only the receipt", len(got))
	}
	r := got[0]
	if r.Header.Get("Message-Id") != "<"+paidIDs[1].String()+"@fe.example.com>" {
		t.Fatalf("the email is not the receipt: %s %q", r.Header.Get("Message-Id"), r.Subject)
	}
	contains(t, "receipt subject", r.Subject, "pagamento ricevuto")
	// Paid on 11 March 2026: a year from the payment, for the space and the services alike.
	contains(t, "receipt", r.Text, "72,59 €", "1 GB", "11/03/2027",
		"Servizio Fatturazione Elettronica: dal 30/06/2026 al 11/03/2027 (9 mesi addebitati)",
		"Utenti aggiuntivi × 2: dal 30/09/2026 al 11/03/2027 (6 mesi addebitati)")
	if v := value(m.Metrics().Skipped.WithLabelValues("order_paid")); v != 1 {
		t.Errorf("skipped order_paid = %v", v)
	}
}

func TestHolderNameWithHTMLArrivesEscaped(t *testing.T) {
	h := newHarness(t, "")
	_, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	name := `<b onclick="x()">Evil</b> & Sons`
	h.confirm(confirmed(t, h.cat, name, "evil@example.com", "en", domain.MethodPayPal))
	m := h.smtp.waitN(t, 1, 10*time.Second)[0]
	contains(t, "html", m.HTML, "&lt;b onclick=&#34;x()&#34;&gt;Evil&lt;/b&gt; &amp; Sons")
	if strings.Contains(m.HTML, "<b onclick") {
		t.Fatalf("raw markup from the holder name in the HTML part:\n%s", m.HTML)
	}
	contains(t, "text", m.Text, "Dear "+name)
}

// A redelivery of everything (the consumer recreated from the start) sends nothing again.
func TestRedeliverySendsNothingTwice(t *testing.T) {
	h := newHarness(t, "")
	cfg := h.config(h.smtpSender())
	m, stop := h.runMailer(cfg)
	var orders []domain.OrderConfirmed
	for range 10 {
		c := confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodCard)
		orders = append(orders, c)
		h.confirm(c)
	}
	h.smtp.waitN(t, 10, 15*time.Second)
	for _, c := range orders[:5] {
		h.pay(c)
	}
	// 10 instructions + 5 receipts.
	h.smtp.waitN(t, 15, 15*time.Second)
	stop()
	if v := value(m.Metrics().Sent.WithLabelValues(mailer.KindInstructions)); v != 10 {
		t.Fatalf("sent instructions %v", v)
	}
	ctx := context.Background()
	s, _ := h.js.Stream(ctx, relay.DefaultStream)
	if err := s.DeleteConsumer(ctx, mailer.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	// The same event once more under another message id, as a republish after the
	// de-duplication window would be.
	last, err := s.GetLastMsgForSubject(ctx, notifications.Subject(relay.DefaultSubjectPrefix, "OrderConfirmed", orders[9].OrderID.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.PublishMsg(ctx, natsMsg(last)); err != nil {
		t.Fatal(err)
	}
	m2, stop2 := h.runMailer(cfg)
	defer stop2()
	waitCounter(t, "already_sent skips", func() float64 { return value(m2.Metrics().Skipped.WithLabelValues("already_sent")) }, 16)
	waitSettled(t, h.js) // nothing left that could be skipped once more
	if v := value(m2.Metrics().Skipped.WithLabelValues("already_sent")); v != 16 {
		t.Fatalf("already_sent skips %v, want 16", v)
	}
	onceEach(t, h.smtp.messages())
	if n := len(h.smtp.messages()); n != 15 {
		t.Fatalf("%d emails after the redelivery, want 15", n)
	}
	if n := h.sentLog(); n != 15 {
		t.Fatalf("sent-log holds %d, want 15", n)
	}
}

// A mailer stopped mid-stream (its connection closed) and started again sends each email once.
func TestMailerStoppedMidStreamAndRestarted(t *testing.T) {
	h := newHarness(t, "")
	cfg := h.config(h.smtpSender())
	const n = 60
	for range n {
		h.confirm(confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodBankTransfer))
	}
	for round := 0; len(h.smtp.messages()) < n; round++ {
		if round > 20 {
			t.Fatalf("only %d of %d emails after %d restarts", len(h.smtp.messages()), n, round)
		}
		_, stop := h.runMailer(cfg)
		before := len(h.smtp.messages())
		// A round that sends fewer is not a failure by itself: the next one goes on, and
		// the rounds are counted above.
		testwait.Until(10*time.Second, func() bool { return len(h.smtp.messages()) >= min(n, before+7) })
		stop()
	}
	// stop returns once the deliveries in flight are done: no email can still arrive.
	if got := onceEach(t, h.smtp.messages()); len(got) != n {
		t.Fatalf("%d distinct emails, want %d", len(got), n)
	}
}

// SMTP down (connection refused) for a while, then up: the email arrives once.
func TestSMTPDownThenUp(t *testing.T) {
	h := newHarness(t, "")
	addr := h.smtp.addr
	_ = h.smtp.srv.Close() // down: connection refused on that port
	host, port := h.smtp.hostPort()
	sender, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: host, Port: port, TLS: mailer.TLSNone, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, stop := h.runMailer(h.config(sender))
	defer stop()
	h.confirm(confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodCard))
	waitCounter(t, "failed attempts while the server is down", func() float64 { return value(m.Metrics().Failed) }, 3)
	up := startSMTPAt(t, addr)
	up.waitN(t, 1, 10*time.Second)
	waitSettled(t, h.js) // the email's notification acknowledged: no retry of it is left
	if got := onceEach(t, up.messages()); len(got) != 1 {
		t.Fatalf("%d emails, want 1", len(got))
	}
	if v := value(m.Metrics().DeadLettered); v != 0 {
		t.Fatalf("dead-lettered %v", v)
	}
}

// SMTP refusing every attempt: after the last one the message is kept as a dead letter.
func TestGivenUpEmailGoesToDeadLetters(t *testing.T) {
	h := newHarness(t, "")
	h.smtp.setReject(true)
	cfg := h.config(h.smtpSender())
	cfg.Attempts = 3
	m, stop := h.runMailer(cfg)
	defer stop()
	c := confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodCard)
	eventID := h.confirm(c)
	ctx := context.Background()
	var dls []mailer.DeadLetter
	testwait.For(t, "a dead letter", func() bool {
		var err error
		if dls, err = mailer.ListDeadLetters(ctx, h.js, ""); err != nil {
			t.Fatal(err)
		}
		return len(dls) > 0
	})
	if len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	d := dls[0]
	if d.EventID != eventID.String() || d.Type != "OrderConfirmed" || d.Attempts != 3 || !strings.Contains(d.Error, "451") {
		t.Fatalf("dead letter %+v", d)
	}
	// The mailer counts the dead letter once it is written, so a moment after it shows.
	waitCounter(t, "dead-lettered", func() float64 { return value(m.Metrics().DeadLettered) }, 1)
	if v := value(m.Metrics().DeadLettered); v != 1 {
		t.Fatalf("dead-lettered metric %v", v)
	}
	// The give-up is in the order's history, as durable as the log, before the dead letter.
	envs, err := h.store.ReadStream(ctx, eventstore.StreamName("order", c.OrderID), 0)
	if err != nil {
		t.Fatal(err)
	}
	var given []string
	for _, env := range envs {
		if env.Type == "EmailGivenUp" {
			given = append(given, string(env.Payload))
		}
	}
	if len(given) != 1 || !strings.Contains(given[0], `"kind":"instructions"`) || !strings.Contains(given[0], `"attempts":3`) || !strings.Contains(given[0], "451") {
		t.Fatalf("the order's history holds %q, want one EmailGivenUp of the instructions", given)
	}
	if v := value(m.Metrics().Failed); v != 3 {
		t.Fatalf("failed metric %v", v)
	}
	// The consumer no longer holds it: nothing pending, nothing redelivered.
	s, _ := h.js.Stream(ctx, relay.DefaultStream)
	cons, _ := s.Consumer(ctx, mailer.DefaultDurable)
	info, _ := cons.Info(ctx)
	if info.NumAckPending != 0 || info.NumPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("consumer still holds the message: %+v", info)
	}
}

func TestOutboxWritesEmlFiles(t *testing.T) {
	h := newHarness(t, "")
	dir := t.TempDir()
	out, err := mailer.NewOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, stop := h.runMailer(h.config(out))
	defer stop()
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodBankTransfer)
	h.confirm(c)
	waitCounter(t, "instructions sent", func() float64 { return value(m.Metrics().Sent.WithLabelValues(mailer.KindInstructions)) }, 1)
	// Named by the order and the kind of email, so a person finds it; its parts are 8bit
	// UTF-8, so grep finds the amount as it reads.
	raw, err := readFile(out.Path(c.OrderID.String() + "-" + mailer.KindInstructions))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("72,59 €")) || !bytes.Contains(raw, []byte("Content-Transfer-Encoding: 8bit")) {
		t.Fatalf("the .eml is not plain UTF-8:\n%s", raw)
	}
	r := received{Raw: raw}
	if err := parse(&r); err != nil {
		t.Fatal(err)
	}
	contains(t, "eml", r.Text, "IT60X0542811101000000123456", "72,59 €", c.OrderID.String())
	// Beside the email, only the folder of files being written, empty.
	if entries, _ := readDir(dir); len(entries) != 2 || !slices.Contains(entries, ".tmp") {
		t.Fatalf("outbox holds %v", entries)
	}
	if entries, _ := readDir(filepath.Join(dir, ".tmp")); len(entries) != 0 {
		t.Fatalf("outbox/.tmp holds %v", entries)
	}
}

// waitSettled waits until the mailer's consumer has acknowledged every message of the
// notifications stream (each settled: sent and recorded, skipped, or dead-lettered), so that
// a test may check that something was not sent: nothing is left that could still send it.
func waitSettled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	testwait.Check(t, "the mailer to settle the notifications stream", func() error {
		s, err := js.Stream(ctx, relay.DefaultStream)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := s.Consumer(ctx, mailer.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.AckFloor.Stream < si.State.LastSeq || ci.NumAckPending != 0 || ci.NumPending != 0 {
			return fmt.Errorf("settled up to %d of %d (%d pending, %d unacknowledged)",
				ci.AckFloor.Stream, si.State.LastSeq, ci.NumPending, ci.NumAckPending)
		}
		return nil
	})
}
