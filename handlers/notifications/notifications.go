// Package notifications is the contract between the event log and the world outside it: the
// versioned integration messages the relay publishes to NATS, and that the mailer (or any other
// consumer) reads instead of the domain's internal events.
//
// # Subjects and envelope
//
// A message goes to "<prefix>.<Type>.<aggregateId>" (DefaultSubjectPrefix
// "orders.notifications", stream DefaultStream), with the event's id as Nats-Msg-Id. Its body
// is an Envelope in JSON: type, version, eventId, occurredAt, correlationId, the order and/or
// subscription it is about, and data, the payload of that type and version (OrderConfirmedV1,
// ...). Dates are civil dates in Europe/Rome ("YYYY-MM-DD"), money integer euro cents with
// VAT, texts in the languages of the catalogue by code ("it", "en").
//
// # Compatibility rule
//
// Within a version, fields may only be added, and only optional ones whose absence means what
// older messages meant: a consumer ignores fields it does not know. Anything else (a field
// removed, renamed, retyped, or whose meaning changes) is a new version, published side by side
// with the old one (same type, another version, another message) for as long as consumers of
// the old one remain. A consumer refuses a version it does not know (ErrUnknownVersion) rather
// than guessing.
package notifications

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // Rome dates on any machine, with or without a zoneinfo folder

	"github.com/google/uuid"
)

// Where the relay publishes by default.
const (
	DefaultStream        = "NOTIFICATIONS"
	DefaultSubjectPrefix = "orders.notifications"
)

// Subject is where a message of type typ about aggregate id is published.
func Subject(prefix, typ, aggregateID string) string {
	return prefix + "." + typ + "." + aggregateID
}

// VersionOutside marks a message outside the contract: an event the relay was told to
// publish (relay.Options.AllTypes or Types) that has no contract type. Its data is the
// event log's own payload, whose shape may change at any time; no consumer should rely on it.
const VersionOutside = 0

var (
	// ErrMalformed: the body is not an envelope (not JSON, no type, no event id).
	ErrMalformed = errors.New("notifications: malformed message")
	// ErrUnknownType: the message's type is not one this contract knows.
	ErrUnknownType = errors.New("notifications: unknown message type")
	// ErrUnknownVersion: the type is known, this version of it is not (a newer producer, or
	// a message outside the contract).
	ErrUnknownVersion = errors.New("notifications: unknown message version")
)

// Envelope is an integration message: what happened (Type, Version), which fact of the log it
// comes from (EventID, unique: consumers de-duplicate on it), when, as part of what
// (CorrelationID), about which order or subscription, and the payload (Data).
type Envelope struct {
	Type       string    `json:"type"`
	Version    int       `json:"version"`
	EventID    uuid.UUID `json:"eventId"`
	OccurredAt time.Time `json:"occurredAt"`
	// CorrelationID ties the message to the request that caused it ("" when none).
	CorrelationID string `json:"correlationId,omitempty"`
	// OrderID and SubscriptionID are set when the message is about them.
	OrderID        uuid.UUID       `json:"orderId,omitzero"`
	SubscriptionID uuid.UUID       `json:"subscriptionId,omitzero"`
	Data           json.RawMessage `json:"data"`
}

// Payload is the data of one type and version of message.
type Payload interface {
	MessageType() string
	MessageVersion() int
}

// Encode is the body of a message with head's fields and payload p (whose type and version
// it takes).
func Encode(head Envelope, p Payload) ([]byte, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("notifications: encode %s v%d: %w", p.MessageType(), p.MessageVersion(), err)
	}
	head.Type, head.Version, head.Data = p.MessageType(), p.MessageVersion(), data
	return json.Marshal(head)
}

// EncodeOutside is the body of a message outside the contract (VersionOutside): head's type
// with data as it is.
func EncodeOutside(head Envelope, data json.RawMessage) ([]byte, error) {
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: %s data is not JSON", ErrMalformed, head.Type)
	}
	head.Version, head.Data = VersionOutside, data
	return json.Marshal(head)
}

// Parse reads a message's envelope, leaving its data undecoded: enough to log it, route it
// or refuse it, whatever its version.
func Parse(body []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case e.Type == "":
		return Envelope{}, fmt.Errorf("%w: no type", ErrMalformed)
	case e.EventID == uuid.Nil:
		return Envelope{}, fmt.Errorf("%w: no event id", ErrMalformed)
	}
	return e, nil
}

// Decode reads a message whole: its envelope and its payload, one of the V1 types (a value,
// not a pointer). A type or version the contract does not know is refused.
func Decode(body []byte) (Envelope, Payload, error) {
	e, err := Parse(body)
	if err != nil {
		return Envelope{}, nil, err
	}
	p, err := e.Payload()
	if err != nil {
		return e, nil, err
	}
	return e, p, nil
}

// Payload decodes the envelope's data as its type and version say.
func (e Envelope) Payload() (Payload, error) {
	versions, ok := registry[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, e.Type)
	}
	decode, ok := versions[e.Version]
	if !ok {
		return nil, fmt.Errorf("%w: %s version %d (this consumer reads %v)", ErrUnknownVersion, e.Type, e.Version, Versions(e.Type))
	}
	if len(bytes.TrimSpace(e.Data)) == 0 {
		return nil, fmt.Errorf("%w: %s v%d has no data", ErrMalformed, e.Type, e.Version)
	}
	p, err := decode(e.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s v%d data: %v", ErrMalformed, e.Type, e.Version, err)
	}
	return p, nil
}

// Date is a civil date in Europe/Rome, "YYYY-MM-DD" in JSON; the zero Date is "no date" ("").
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Rome is the zone the contract's dates are reckoned in.
var Rome = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Rome")
	if err != nil {
		panic(err)
	}
	return loc
}()

// DateOf is the Rome calendar date at instant t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Rome).Date()
	return Date{y, m, d}
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// After reports whether d is a later day than o.
func (d Date) After(o Date) bool {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).After(time.Date(o.Year, o.Month, o.Day, 0, 0, 0, 0, time.UTC))
}

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// MarshalText writes "YYYY-MM-DD", or "" for the zero Date.
func (d Date) MarshalText() ([]byte, error) {
	if !d.IsZero() && (d.Year < 0 || d.Year > 9999) {
		return nil, fmt.Errorf("notifications: year %d of %v has no YYYY form", d.Year, d)
	}
	return []byte(d.String()), nil
}

// UnmarshalText reads "YYYY-MM-DD" (a day that exists) or "".
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	t, err := time.Parse(time.DateOnly, string(b))
	if err != nil {
		return fmt.Errorf("date %q is not YYYY-MM-DD", b)
	}
	y, m, day := t.Date()
	*d = Date{y, m, day}
	return nil
}

// Text is a text in each language it exists in, by code ("it", "en").
type Text map[string]string
