package mailer_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"
)

// A message of a version this mailer does not read (a newer relay) is not guessed at: it goes
// to the dead letters at once, saying which version came and which the mailer reads, and
// the order's email of the version it reads goes out once.
func TestUnknownVersionGoesToTheDeadLettersAtOnce(t *testing.T) {
	h := newHarness(t, "")
	c := confirmed(t, h.cat, "Mario Rossi", "mario@example.it", "it", domain.MethodCard)
	h.confirm(c)
	jstest.WaitMessages(t, h.js, notifications.DefaultStream, 1)
	ctx := context.Background()
	s, err := h.js.Stream(ctx, notifications.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.GetLastMsgForSubject(ctx, notifications.Subject(notifications.DefaultSubjectPrefix, notifications.TypeOrderConfirmed, c.OrderID.String()))
	if err != nil {
		t.Fatal(err)
	}
	// The same fact as a version 2 would publish it beside version 1 (the relay's headers
	// kept, so that its checkpoint stays where it was).
	var v2 map[string]any
	if err := json.Unmarshal(last.Data, &v2); err != nil {
		t.Fatal(err)
	}
	v2["version"], v2["eventId"] = 2, uuid.NewString()
	next := natsMsg(last)
	if next.Data, err = json.Marshal(v2); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.PublishMsg(ctx, next); err != nil {
		t.Fatal(err)
	}

	m, stop := h.runMailer(h.config(h.smtpSender()))
	defer stop()
	waitCounter(t, "dead-lettered", func() float64 { return value(m.Metrics().DeadLettered) }, 1)
	waitSettled(t, h.js) // and the version 1 message handled too
	dls, err := mailer.ListDeadLetters(ctx, h.js, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want the version 2 message", len(dls))
	}
	d := dls[0]
	if d.EventID != v2["eventId"] || d.OrderID != c.OrderID.String() || d.Type != notifications.TypeOrderConfirmed || d.Attempts != 1 ||
		!strings.Contains(d.Error, "OrderConfirmed version 2") || !strings.Contains(d.Error, "[1]") {
		t.Fatalf("dead letter %+v", d)
	}
	if got := onceEach(t, h.smtp.waitN(t, 1, 10*time.Second)); len(got) != 1 {
		t.Fatalf("%d emails, want the instructions once", len(got))
	}
	if v := value(m.Metrics().DeadLettered); v != 1 {
		t.Fatalf("dead-lettered %v", v)
	}
}

// A payment method the relay's catalogue did not know arrives with its code alone: the
// instructions cannot be written, and no retry changes that.
func TestUnknownPaymentMethodIsPermanent(t *testing.T) {
	r, err := mailer.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	ev := contract[notifications.OrderConfirmedV1](t, confirmed(t, domain.DefaultCatalogue(), "R", "r@example.com", "it", "cash"))
	if ev.PaymentMethod.Code != "cash" || len(ev.PaymentMethod.Label) != 0 {
		t.Fatalf("payment method %+v", ev.PaymentMethod)
	}
	if _, err := r.Instructions("o-1", ev); !errors.Is(err, mailer.ErrPermanent) || !strings.Contains(err.Error(), `"cash"`) {
		t.Fatalf("instructions with an unknown method: %v", err)
	}
}
