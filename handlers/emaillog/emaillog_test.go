package emaillog

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/mailer"
)

// The mailer's ledger over the real log: the order as the mailer sees it, each email recorded
// once per notification whoever records it, a record the order refuses marked as refused.
func TestEachNotificationIsRecordedOnce(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	ctx := context.Background()
	ledger := New(command.New(store, command.Options{}))
	order := uuid.New()
	if _, ok, err := ledger.Order(ctx, order); ok || err != nil {
		t.Fatalf("an order not in the log: ok %v, %v", ok, err)
	}
	payBy := domain.Date{Year: 2026, Month: time.April, Day: 9}
	conf, err := eventstore.DomainCodec().Encode(uuid.New(), domain.OrderConfirmed{OrderID: order, PaymentMethod: "card", PayBy: payBy}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	stream := eventstore.StreamName("order", order)
	if _, err := store.Append(ctx, stream, eventstore.NoStream, conf); err != nil {
		t.Fatal(err)
	}
	v, ok, err := ledger.Order(ctx, order)
	if err != nil || !ok || v.Status != mailer.StatusConfirmed || v.PayBy.String() != "2026-04-09" || len(v.Emails) != 0 {
		t.Fatalf("order view %+v, %v, %v", v, ok, err)
	}

	cause := mailer.Cause{EventID: uuid.New(), CorrelationID: "corr-1"}
	sent := mailer.EmailSent{Kind: mailer.KindInstructions, MessageID: "m1@fe.example.com", To: "a@example.com", SentAt: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)}
	for range 2 { // a redelivery, or another replica's mailer, records the same notification
		if err := ledger.Record(ctx, order, sent, cause); err != nil {
			t.Fatal(err)
		}
	}
	given := mailer.EmailGivenUp{Kind: mailer.KindReceipt, Attempts: 8, Reason: "451", At: sent.SentAt}
	if err := ledger.Record(ctx, order, given, mailer.Cause{EventID: uuid.New()}); err != nil {
		t.Fatal(err)
	}
	err = ledger.Record(ctx, order, mailer.EmailSent{Kind: mailer.KindReceipt}, mailer.Cause{EventID: uuid.New()})
	if !errors.Is(err, mailer.ErrRefused) || !errors.Is(err, domain.ErrInvalidEmailRecord) {
		t.Fatalf("a record without a Message-ID: %v, want ErrRefused", err)
	}

	v, _, _ = ledger.Order(ctx, order)
	if e, ok := v.Emails[mailer.KindInstructions]; !ok || e.MessageID != sent.MessageID || !e.SentAt.Equal(sent.SentAt) || len(v.Emails) != 1 {
		t.Fatalf("emails %+v", v.Emails)
	}
	envs, err := store.ReadStream(ctx, stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, env := range envs[1:] {
		types = append(types, env.Type)
		if env.Metadata.Actor != "process:mailer" || env.Metadata.CausationID == "" {
			t.Errorf("%s metadata %+v", env.Type, env.Metadata)
		}
	}
	if len(types) != 2 || types[0] != "EmailSent" || types[1] != "EmailGivenUp" {
		t.Fatalf("the order's history after the records: %v", types)
	}
	if m := envs[1].Metadata; m.CausationID != cause.EventID.String() || m.CorrelationID != "corr-1" {
		t.Fatalf("EmailSent metadata %+v, want caused by %s", m, cause.EventID)
	}
}

// The ledger answers the order as the log has it, even when the handler's cache is behind
// (a follower acting on a commit can run before the command that appended it has cached its
// new state): a confirmed order must not be seen at checkout, or its instructions are
// skipped for good.
func TestTheOrderIsTheLogsNotTheCaches(t *testing.T) {
	_, store := jstest.Start(t, jstest.Relaxed)
	ctx := context.Background()
	ledger := New(command.New(store, command.Options{}))
	order := uuid.New()
	codec := eventstore.DomainCodec()
	started, err := codec.Encode(uuid.New(), domain.CheckoutStarted{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	stream := eventstore.StreamName("order", order)
	if _, err := store.Append(ctx, stream, eventstore.NoStream, started); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ledger.Order(ctx, order); err != nil { // cached as it is now
		t.Fatal(err)
	}
	conf, err := codec.Encode(uuid.New(), domain.OrderConfirmed{OrderID: order, PaymentMethod: "card"}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, stream, eventstore.Exact(0), conf); err != nil { // not through the cache
		t.Fatal(err)
	}
	if v, ok, err := ledger.Order(ctx, order); err != nil || !ok || v.Status != mailer.StatusConfirmed {
		t.Fatalf("order view %+v, %v, %v: want it confirmed, as the log has it", v, ok, err)
	}
}
