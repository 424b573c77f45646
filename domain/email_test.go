package domain_test

import (
	"reflect"
	"testing"

	"github.com/einvoice/spaceorders/domain"
)

// An email sent is a fact of the order: recorded once per kind, in any state the order is
// in (a payment may land between the send and the record), and it changes nothing else.
func TestAnEmailSentIsRecordedOncePerKind(t *testing.T) {
	told := domain.RecordEmailSent{Kind: "instructions", MessageID: "ev-1@fe.example", To: holder.Email, SentAt: now}
	for name, history := range map[string][]domain.Event{
		"confirmed": confirmedOrder(),
		"paid":      paid(now),
	} {
		events := givenOrder(t, history...).when(told).thenEvents(
			domain.EmailSent{Kind: "instructions", MessageID: "ev-1@fe.example", To: holder.Email, SentAt: now})
		before := orderOf(history...)
		after := orderOf(append(history, events...)...)
		if got := after.Emails["instructions"]; got.MessageID != "ev-1@fe.example" || !got.SentAt.Equal(now) {
			t.Errorf("%s: the order does not show when the holder was told: %+v", name, after.Emails)
		}
		after.Emails = nil
		if !reflect.DeepEqual(before, after) {
			t.Errorf("%s: recording an email changed the order:\n%+v\n%+v", name, before, after)
		}
		// Recorded already: nothing more, whatever the Message-ID of a second attempt.
		again := told
		again.MessageID = "other@fe.example"
		givenOrder(t, append(history, events...)...).when(again).thenEvents()
		// Another kind is another email.
		givenOrder(t, append(history, events...)...).when(domain.RecordEmailSent{Kind: "receipt", MessageID: "ev-2@fe.example", SentAt: now}).
			thenEvents(domain.EmailSent{Kind: "receipt", MessageID: "ev-2@fe.example", SentAt: now})
	}
	givenOrder(t, confirmedOrder()...).when(domain.RecordEmailSent{Kind: "instructions"}).thenError(domain.ErrInvalidEmailRecord)
	givenOrder(t).when(told).thenError(domain.ErrUnknownOrder)
}

// An email given up is a fact of the order too: recorded once per kind, never for a kind
// already sent, and it changes nothing else.
func TestAnEmailGivenUpIsRecordedOncePerKind(t *testing.T) {
	gaveUp := domain.RecordEmailGivenUp{Kind: "instructions", Attempts: 8, Reason: "550 mailbox unavailable", At: now}
	history := confirmedOrder()
	events := givenOrder(t, history...).when(gaveUp).thenEvents(
		domain.EmailGivenUp{Kind: "instructions", Attempts: 8, Reason: "550 mailbox unavailable", GivenUpAt: now})
	before, after := orderOf(history...), orderOf(append(history, events...)...)
	if got := after.EmailsGivenUp["instructions"]; got.Attempts != 8 || got.Reason != "550 mailbox unavailable" {
		t.Errorf("the order does not show the give-up: %+v", after.EmailsGivenUp)
	}
	after.EmailsGivenUp = nil
	if !reflect.DeepEqual(before, after) {
		t.Errorf("recording a give-up changed the order:\n%+v\n%+v", before, after)
	}
	givenOrder(t, append(history, events...)...).when(gaveUp).thenEvents()
	sent := append(confirmedOrder(), domain.EmailSent{Kind: "instructions", MessageID: "ev-1@fe.example", SentAt: now})
	givenOrder(t, sent...).when(gaveUp).thenEvents()
	givenOrder(t, history...).when(domain.RecordEmailGivenUp{}).thenError(domain.ErrInvalidEmailRecord)
}
