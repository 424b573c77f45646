package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// waitCounter waits until the counter reaches want.
func waitCounter(t *testing.T, what string, read func() float64, want float64) {
	t.Helper()
	testwait.Check(t, fmt.Sprintf("%s to reach %v", what, want), func() error {
		if got := read(); got < want {
			return fmt.Errorf("%v so far", got)
		}
		return nil
	})
}

// Each email accepted by the server is a fact in the order's history: its kind, its
// Message-ID, its recipient, when.
func TestEachEmailSentIsInTheOrdersHistory(t *testing.T) {
	h := newHarness(t, "")
	_, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodCard)
	h.confirm(c)
	h.smtp.waitN(t, 1, 10*time.Second)
	h.pay(c)
	got := h.smtp.waitN(t, 2, 10*time.Second)
	waitSentLog(t, h, 2)
	envs, err := h.store.ReadStream(context.Background(), eventstore.StreamName("order", c.OrderID), 0)
	if err != nil {
		t.Fatal(err)
	}
	told := map[string]domain.EmailSent{}
	for _, env := range envs {
		if env.Type == "EmailSent" {
			var e domain.EmailSent
			if err := json.Unmarshal(env.Payload, &e); err != nil {
				t.Fatal(err)
			}
			if env.Metadata.Actor != "process:mailer" || env.Metadata.CausationID == "" {
				t.Errorf("EmailSent metadata %+v", env.Metadata)
			}
			told[e.Kind] = e
		}
	}
	if len(told) != 2 {
		t.Fatalf("%d EmailSent in the history, want 2", len(told))
	}
	// The instructions went first (the payment waited for them), the receipt second; their
	// records may land in either order.
	for i, kind := range []string{mailer.KindInstructions, mailer.KindReceipt} {
		e := told[kind]
		if e.Kind != kind || "<"+e.MessageID+">" != got[i].Header.Get("Message-Id") || e.To != "mario@example.it" || !e.SentAt.Equal(mailDay.UTC()) {
			t.Errorf("record %d: %+v; email Message-Id %s", i, e, got[i].Header.Get("Message-Id"))
		}
	}
}

// An email the order's history shows sent (a restored backup, another replica) is not sent
// again, though NATS has never seen it sent.
func TestAnEmailInTheHistoryIsNotSentAgain(t *testing.T) {
	h := newHarness(t, "")
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodCard)
	h.confirm(c)
	h.append(eventstore.StreamName("order", c.OrderID),
		domain.EmailSent{Kind: mailer.KindInstructions, MessageID: "earlier@fe.example.com", To: "mario@example.it", SentAt: mailDay})
	m, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	waitCounter(t, "already_sent", func() float64 { return value(m.Metrics().Skipped.WithLabelValues("already_sent")) }, 1)
	if n := len(h.smtp.messages()); n != 0 {
		t.Fatalf("%d emails sent", n)
	}
}

// Payment instructions never go out after the order's last day to pay: a mailer that was
// down, or a restored log, must not ask for money the order can no longer take.
func TestNoInstructionsAfterThePayByDay(t *testing.T) {
	h := newHarness(t, "")
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodBankTransfer)
	cfg := h.config(h.smtpSender())
	late := time.Date(c.PayBy.Year, c.PayBy.Month, c.PayBy.Day+1, 0, 30, 0, 0, domain.Rome)
	cfg.Now = func() time.Time { return late }
	m, stop := h.runMailer(cfg)
	h.confirm(c)
	waitCounter(t, "past_pay_by", func() float64 { return value(m.Metrics().Skipped.WithLabelValues("past_pay_by")) }, 1)
	if n := len(h.smtp.messages()); n != 0 {
		t.Fatalf("%d emails sent after the pay-by day", n)
	}
	stop()
	// On its last day they still go (another consumer reads the same notification again).
	cfg2 := h.config(h.smtpSender())
	cfg2.Durable = "mailer-2"
	cfg2.Now = func() time.Time { return late.Add(-time.Hour) }
	_, stop2 := h.runMailer(cfg2)
	defer stop2()
	got := h.smtp.waitN(t, 1, 10*time.Second)
	if !strings.Contains(got[0].Subject, c.OrderID.String()) {
		t.Fatalf("the email sent is not the order's: %q", got[0].Subject)
	}
}
