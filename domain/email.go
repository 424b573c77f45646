package domain

import (
	"maps"
	"strings"
	"time"
)

// EmailSent: an email about the order was accepted by the mail server. That the holder was
// told is a fact of the order's history, so that a restored or migrated log, or another
// replica, knows the email went out and never sends it again. It changes nothing else of
// the order.
type EmailSent struct {
	// Kind is what the email was: "instructions" (how to pay) or "receipt".
	Kind string `json:"kind"`
	// MessageID is the email's Message-ID, without angle brackets.
	MessageID string    `json:"messageId"`
	To        string    `json:"to"`
	SentAt    time.Time `json:"sentAt"`
}

func (EmailSent) isEvent() {}

// RecordEmailSent records that an email of a kind went out for the order (the mailer's,
// after the mail server accepted it). Recording the same kind again changes nothing.
type RecordEmailSent struct {
	Kind      string
	MessageID string
	To        string
	SentAt    time.Time
}

func (RecordEmailSent) isOrderCommand() {}

func (RecordEmailSent) CommandName() string { return "RecordEmailSent" }

// ErrInvalidEmailRecord: the record of an email names no kind or no Message-ID.
var ErrInvalidEmailRecord = invalid("invalid-email-record", "An email record needs its kind and Message-ID.")

// Limits on an email record, so that a broken mailer cannot bloat the log.
const maxEmailKindLen = 32

func recordEmailSent(o Order, c RecordEmailSent) ([]Event, error) {
	kind, msgID := strings.TrimSpace(c.Kind), strings.TrimSpace(c.MessageID)
	if kind == "" || msgID == "" || len(kind) > maxEmailKindLen || len(msgID) > 2*maxEmailLen {
		return nil, ErrInvalidEmailRecord
	}
	if _, sent := o.Emails[kind]; sent {
		return nil, nil
	}
	return []Event{EmailSent{Kind: kind, MessageID: msgID, To: clip(c.To, maxEmailLen), SentAt: c.SentAt}}, nil
}

// withEmail is o with the email recorded, leaving the map of o untouched.
func (o Order) withEmail(e EmailSent) Order {
	emails := make(map[string]EmailSent, len(o.Emails)+1)
	maps.Copy(emails, o.Emails)
	emails[e.Kind] = e
	o.Emails = emails
	return o
}

// EmailGivenUp: the mailer gave up an email about the order (the mail server refused it for
// good, or kept failing through every attempt). The dead-letter list says why; this fact
// makes the give-up as durable as the log, so that an email that could not be sent is
// never dropped unseen, and the order's history shows it.
type EmailGivenUp struct {
	Kind      string    `json:"kind"`
	Attempts  int       `json:"attempts"`
	Reason    string    `json:"reason"`
	GivenUpAt time.Time `json:"givenUpAt"`
}

func (EmailGivenUp) isEvent() {}

// RecordEmailGivenUp records that the mailer gave up an email of a kind. Recording a kind
// already sent, or already given up, changes nothing.
type RecordEmailGivenUp struct {
	Kind     string
	Attempts int
	Reason   string
	At       time.Time
}

func (RecordEmailGivenUp) isOrderCommand() {}

func (RecordEmailGivenUp) CommandName() string { return "RecordEmailGivenUp" }

// maxGiveUpReasonLen bounds the reason kept in the log: a mail server's answer can be long.
const maxGiveUpReasonLen = 500

func recordEmailGivenUp(o Order, c RecordEmailGivenUp) ([]Event, error) {
	kind := strings.TrimSpace(c.Kind)
	if kind == "" || len(kind) > maxEmailKindLen {
		return nil, ErrInvalidEmailRecord
	}
	if _, sent := o.Emails[kind]; sent {
		return nil, nil
	}
	if _, given := o.EmailsGivenUp[kind]; given {
		return nil, nil
	}
	return []Event{EmailGivenUp{Kind: kind, Attempts: max(c.Attempts, 0), Reason: clip(c.Reason, maxGiveUpReasonLen), GivenUpAt: c.At}}, nil
}

// withGivenUp is o with the give-up recorded, leaving the map of o untouched.
func (o Order) withGivenUp(e EmailGivenUp) Order {
	given := make(map[string]EmailGivenUp, len(o.EmailsGivenUp)+1)
	maps.Copy(given, o.EmailsGivenUp)
	given[e.Kind] = e
	o.EmailsGivenUp = given
	return o
}
