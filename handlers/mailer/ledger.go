package mailer

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/handlers/notifications"
)

// Ledger is the mailer's state, kept in the order's history in the event log rather than in
// NATS: the log is what backups, imports and replicas carry, so none of them sends an email
// twice. The composition root implements it over the command handler.
type Ledger interface {
	// Order is the order as the log has it now, whoever wrote last (another replica's
	// mailer, a payment); ok is false when the log has no such order.
	Order(ctx context.Context, orderID uuid.UUID) (o OrderView, ok bool, err error)
	// Record appends an email's fact (EmailSent or EmailGivenUp) to the order's history. The
	// same cause recorded again (a redelivery, another mailer) writes nothing. A record the
	// order refuses for good answers an error wrapping ErrRefused.
	Record(ctx context.Context, orderID uuid.UUID, rec EmailRecord, cause Cause) error
}

// ErrRefused: the order's history refused a record (a rule of the order, not an outage); a
// retry would be refused again.
var ErrRefused = errors.New("mailer: the order refused the record")

// StatusConfirmed is the status of an order awaiting payment: the only one whose payment
// instructions go out.
const StatusConfirmed = "confirmed"

// OrderView is what the mailer needs of an order: where it stands, its last day to pay, and
// the emails sent about it, by kind.
type OrderView struct {
	Status string
	PayBy  notifications.Date
	Emails map[string]SentEmail
}

// SentEmail is an email the order's history shows sent.
type SentEmail struct {
	MessageID string
	SentAt    time.Time
}

// EmailRecord is EmailSent or EmailGivenUp.
type EmailRecord interface{ emailRecord() }

// EmailSent: the mail server accepted an email of Kind about the order.
type EmailSent struct {
	Kind      string
	MessageID string
	To        string
	SentAt    time.Time
}

// EmailGivenUp: the mailer gave an email of Kind up after Attempts, for Reason.
type EmailGivenUp struct {
	Kind     string
	Attempts int
	Reason   string
	At       time.Time
}

func (EmailSent) emailRecord()    {}
func (EmailGivenUp) emailRecord() {}

// Cause is the notification a record answers: its event id keys the record, so that the
// same notification is recorded once.
type Cause struct {
	EventID       uuid.UUID
	CorrelationID string
}
