package relay

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/notifications"
)

var codec = eventstore.DomainCodec()

// Encode builds the integration message of an event (without its Nats-Msg-Id): the contract's
// message for the event's type (notifications), with the catalogue's labels and payment
// details resolved from cat, or, for an event the contract has no type for, a message outside
// the contract (notifications.VersionOutside) carrying the stored payload as it is.
//
// An event of a contract type that cannot be mapped (a payload this build cannot decode, a
// newer schema version) goes out of the contract too, with the reason in HeaderContractError:
// one such event must not hold back every notification after it, and a consumer of the
// contract refuses it visibly (the mailer dead-letters it and records the give-up).
func Encode(prefix string, cat *domain.Catalogue, env eventstore.Envelope) (*nats.Msg, error) {
	category, id, err := eventstore.ParseStream(env.Stream)
	if err != nil {
		return nil, fmt.Errorf("relay: event %s: %w", env.ID, err)
	}
	head := notifications.Envelope{
		Type:          env.Type,
		EventID:       env.ID,
		OccurredAt:    env.RecordedAt,
		CorrelationID: env.Metadata.CorrelationID,
	}
	switch category { // the stream categories of domain's aggregates
	case "order":
		head.OrderID = id
	case "subscription":
		head.SubscriptionID = id
	}
	var body []byte
	var unmapped error
	if notifications.Known(env.Type) {
		body, unmapped = contractBody(head, cat, env)
	}
	if body == nil {
		if body, err = notifications.EncodeOutside(head, env.Payload); err != nil {
			return nil, fmt.Errorf("relay: encode event %s (%s): %w", env.ID, env.Type, err)
		}
	}
	m := nats.NewMsg(notifications.Subject(prefix, env.Type, id.String()))
	if unmapped != nil {
		m.Header.Set(HeaderContractError, unmapped.Error())
	}
	m.Data = body
	m.Header.Set(HeaderPosition, strconv.FormatUint(env.Position, 10))
	m.Header.Set(HeaderIndex, strconv.Itoa(env.Index))
	m.Header.Set(HeaderType, env.Type)
	m.Header.Set(HeaderStream, env.Stream)
	m.Header.Set(HeaderStreamVersion, strconv.FormatUint(env.StreamVersion, 10))
	return m, nil
}

// contractBody is the contract's message for env, or why there is none.
func contractBody(head notifications.Envelope, cat *domain.Catalogue, env eventstore.Envelope) ([]byte, error) {
	ev, err := codec.Decode(env.Type, env.SchemaVersion, env.Payload)
	if err != nil {
		return nil, err
	}
	p, related := Contract(ev, cat)
	if p == nil {
		return nil, fmt.Errorf("the contract has type %s and the relay no mapping for it", env.Type)
	}
	if related.OrderID != uuid.Nil {
		head.OrderID = related.OrderID
	}
	if related.SubscriptionID != uuid.Nil {
		head.SubscriptionID = related.SubscriptionID
	}
	return notifications.Encode(head, p)
}

// Related is what a message is about besides its own aggregate: the subscription of an
// order's fact, the order behind a subscription's.
type Related struct {
	OrderID, SubscriptionID uuid.UUID
}

// Contract maps a domain event to its contract payload, with labels and payment details from
// cat; nil for an event the contract has no type for. The domain's derived values (the space's months,
// the expiry granted, the expected registration day) are computed here, once, so that a
// consumer needs no domain rules.
func Contract(ev any, cat *domain.Catalogue) (notifications.Payload, Related) {
	switch ev := ev.(type) {
	case domain.SubscriptionOpened:
		svcs := make([]notifications.Service, 0, len(ev.Services))
		for _, s := range ev.Services {
			svcs = append(svcs, notifications.Service{Kind: s.Kind, Label: serviceLabel(cat, s.Kind), Quantity: s.Quantity, ExpiresOn: date(s.ExpiresOn)})
		}
		return notifications.SubscriptionOpenedV1{OwnerID: ev.OwnerID, Holder: notifications.Holder(ev.Holder), Language: ev.Language,
			Services: svcs, BaseGB: ev.BaseGB, OpenedOn: date(ev.OpenedOn)}, Related{}
	case domain.SpaceAdded:
		return notifications.SpaceAddedV1{GB: ev.GB, ValidFrom: date(ev.ValidFrom), ValidUntil: date(ev.ValidUntil)}, Related{OrderID: ev.OrderID}
	case domain.ServicesExtended:
		out := make([]notifications.ServiceExtension, 0, len(ev.Services))
		for _, s := range ev.Services {
			out = append(out, notifications.ServiceExtension{Kind: s.Kind, Label: serviceLabel(cat, s.Kind), Quantity: s.Quantity,
				OldExpiry: date(s.OldExpiry), NewExpiry: date(s.NewExpiry), Months: s.Months})
		}
		return notifications.ServicesExtendedV1{Services: out}, Related{OrderID: ev.OrderID}
	case domain.SpaceExtended:
		out := make([]notifications.BlockExtension, 0, len(ev.Blocks))
		for _, b := range ev.Blocks {
			out = append(out, notifications.BlockExtension{OrderID: b.OrderID, GB: b.GB, OldUntil: date(b.OldUntil), NewUntil: date(b.NewUntil), Months: b.Months})
		}
		return notifications.SpaceExtendedV1{Blocks: out}, Related{OrderID: ev.OrderID}
	case domain.OrderConfirmed:
		return notifications.OrderConfirmedV1{
			OwnerID:                  ev.OwnerID,
			Recipient:                notifications.Recipient(ev.Recipient),
			Quote:                    quote(cat, ev.Quote),
			PaymentMethod:            method(cat, ev.PaymentMethod, ev.OrderID.String()),
			ConfirmedAt:              ev.ConfirmedAt,
			PayBy:                    date(ev.PayBy),
			ExpectedRegistrationOn:   date(ev.ExpectedRegistration()),
			ExpectedRegistrationDays: ev.ExpectedRegistrationDays,
		}, Related{SubscriptionID: ev.SubscriptionID}
	case domain.PaymentRegistered:
		return notifications.PaymentRegisteredV1(ev), Related{}
	case domain.OrderPaid:
		return notifications.OrderPaidV1{
			Recipient:    notifications.Recipient(ev.Recipient),
			Quote:        quote(cat, ev.Quote),
			PaidCents:    ev.PaidCents,
			ExcessCents:  ev.ExcessCents,
			PaidAt:       ev.PaidAt,
			GrantedUntil: date(ev.Quote.GrantedExpiry(domain.DateOf(ev.PaidAt))),
		}, Related{SubscriptionID: ev.SubscriptionID}
	case domain.OrderCancelled:
		return notifications.OrderCancelledV1(ev), Related{}
	case domain.OrderExpired:
		return notifications.OrderExpiredV1(ev), Related{}
	case domain.OrderOverdue:
		return notifications.OrderOverdueV1{PayBy: date(ev.PayBy), PaidCents: ev.PaidCents, DueCents: ev.DueCents, OverdueAt: ev.OverdueAt}, Related{}
	case domain.OrderAbandoned:
		return notifications.OrderAbandonedV1{LastActiveOn: date(ev.LastActiveOn), AbandonedAt: ev.AbandonedAt}, Related{}
	case domain.CreditDue:
		return notifications.CreditDueV1{OwnerID: ev.OwnerID, Holder: notifications.Holder(ev.Holder), AmountCents: ev.AmountCents,
			Reason: ev.Reason, Reference: ev.Reference, RecordedAt: ev.RecordedAt}, Related{OrderID: ev.OrderID, SubscriptionID: ev.SubscriptionID}
	}
	return nil, Related{}
}

func date(d domain.Date) notifications.Date {
	return notifications.Date{Year: d.Year, Month: d.Month, Day: d.Day}
}

func quote(cat *domain.Catalogue, q domain.Quote) notifications.Quote {
	lines := make([]notifications.QuoteLine, 0, len(q.Lines))
	for _, l := range q.Lines {
		lines = append(lines, notifications.QuoteLine{Kind: l.Kind, Label: serviceLabel(cat, l.Kind), Quantity: l.Quantity, Months: l.Months,
			UnitCents: l.UnitCents, NetCents: l.NetCents, OldExpiry: date(l.OldExpiry), NewExpiry: date(l.NewExpiry)})
	}
	return notifications.Quote{OrderDate: date(q.OrderDate), NewExpiry: date(q.NewExpiry), CoTermination: q.CoTermination, GB: q.GB,
		Lines: lines, NetCents: q.NetCents, VATPercent: q.VATPercent, VATCents: q.VATCents, TotalCents: q.TotalCents,
		Currency: q.Currency, SpaceMonths: q.SpaceMonths()}
}

// serviceLabel is the catalogue's label of a service kind; none for the kinds of space, or a
// kind the catalogue does not know (the consumer shows the kind).
func serviceLabel(cat *domain.Catalogue, kind string) notifications.Text {
	s, ok := cat.Services[kind]
	if !ok || len(s.Label) == 0 || kind == domain.KindSpace || kind == domain.KindEarlierSpace {
		return nil
	}
	return notifications.Text(s.Label)
}

// method is the catalogue's description of a payment method, with the payment link resolved
// for the order; only the code when the catalogue does not know the method.
func method(cat *domain.Catalogue, code, orderID string) notifications.PaymentMethod {
	out := notifications.PaymentMethod{Code: code}
	m, ok := cat.Method(code)
	if !ok {
		return out
	}
	out.Label, out.Instructions = notifications.Text(m.Label), notifications.Text(m.Instructions)
	out.Beneficiary, out.IBAN = m.Beneficiary, m.IBAN
	if m.PaymentLink != "" {
		out.PaymentLink = strings.ReplaceAll(m.PaymentLink, "{order}", url.PathEscape(orderID))
	}
	return out
}
