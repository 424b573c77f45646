// Package emaillog keeps the mailer's records in the orders' histories: the mailer's Ledger
// port over the command handler. The log, not NATS, is what backups, imports and replicas
// carry, so an email recorded here is never sent twice. orderd's in-process mailer and
// cmd/mailer both use it.
package emaillog

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"
)

// New is the mailer's Ledger over cmds.
func New(cmds *command.Handler) mailer.Ledger { return mailerLedger{cmds} }

type mailerLedger struct{ cmds *command.Handler }

func (l mailerLedger) Order(ctx context.Context, id uuid.UUID) (mailer.OrderView, bool, error) {
	o, _, ok, err := l.cmds.OrderNow(ctx, id)
	if err != nil || !ok {
		return mailer.OrderView{}, ok, err
	}
	v := mailer.OrderView{
		Status: string(o.Status),
		PayBy:  notifications.Date{Year: o.PayBy.Year, Month: o.PayBy.Month, Day: o.PayBy.Day},
		Emails: make(map[string]mailer.SentEmail, len(o.Emails)),
	}
	for kind, e := range o.Emails {
		v.Emails[kind] = mailer.SentEmail{MessageID: e.MessageID, SentAt: e.SentAt}
	}
	return v, true, nil
}

// Record runs RecordEmailSent or RecordEmailGivenUp with the key "mailer" and the
// notification's event id: the same notification recorded twice, by any mailer, is answered
// from the log and writes nothing.
func (l mailerLedger) Record(ctx context.Context, id uuid.UUID, rec mailer.EmailRecord, cause mailer.Cause) error {
	var cmd domain.OrderCommand
	switch r := rec.(type) {
	case mailer.EmailSent:
		cmd = domain.RecordEmailSent{Kind: r.Kind, MessageID: r.MessageID, To: r.To, SentAt: r.SentAt}
	case mailer.EmailGivenUp:
		cmd = domain.RecordEmailGivenUp{Kind: r.Kind, Attempts: r.Attempts, Reason: r.Reason, At: r.At}
	default:
		return fmt.Errorf("%w: a record of type %T", mailer.ErrRefused, rec)
	}
	event := cause.EventID.String()
	meta := command.Meta{CorrelationID: cause.CorrelationID, CausationID: event, Actor: "process:mailer",
		Key: command.IdempotencyKey("mailer", event)}
	_, _, err := l.cmds.ExecuteOrder(ctx, id, cmd, meta, nil)
	if _, refused := domain.AsError(err); refused {
		return fmt.Errorf("%w: %w", mailer.ErrRefused, err)
	}
	return err
}
