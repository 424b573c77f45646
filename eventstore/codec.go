package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// ErrUnknownEventType: the log holds an event name or version this build cannot read.
var ErrUnknownEventType = errors.New("eventstore: unknown event type")

// Upcaster turns a payload of one schema version into the next version's shape.
type Upcaster func(payload json.RawMessage) (json.RawMessage, error)

// Codec maps Go event values to their stable names and JSON payloads and back. Reading an
// older schema version runs its upcasters in turn up to the current version, so old events
// are read as the current type and never rewritten.
type Codec struct {
	byName    map[string]codecEntry
	byType    map[reflect.Type]codecEntry
	upcasters map[nameVersion]Upcaster
}

type codecEntry struct {
	name    string
	version int
	typ     reflect.Type
}

type nameVersion struct {
	name    string
	version int
}

// NewCodec returns an empty codec; DomainCodec one that knows every domain event.
func NewCodec() *Codec {
	return &Codec{
		byName:    map[string]codecEntry{},
		byType:    map[reflect.Type]codecEntry{},
		upcasters: map[nameVersion]Upcaster{},
	}
}

// DomainCodec knows every event of domain.EventTypes.
func DomainCodec() *Codec {
	c := NewCodec()
	for _, t := range domain.EventTypes() {
		c.Register(t.Name, t.Version, t.Zero)
	}
	return c
}

// Register declares that events named name are, at their current schema version, values of
// zero's type. Registering a name or type twice is a programming error.
func (c *Codec) Register(name string, version int, zero any) {
	t := reflect.TypeOf(zero)
	if _, dup := c.byName[name]; dup {
		panic("eventstore: event " + name + " registered twice")
	}
	if _, dup := c.byType[t]; dup {
		panic("eventstore: type " + t.String() + " registered twice")
	}
	e := codecEntry{name: name, version: version, typ: t}
	c.byName[name], c.byType[t] = e, e
}

// RegisterUpcaster declares how to read version from of name as version from+1.
func (c *Codec) RegisterUpcaster(name string, from int, up Upcaster) {
	c.upcasters[nameVersion{name, from}] = up
}

// Name returns the stable name and current version of an event value.
func (c *Codec) Name(ev any) (string, int, error) {
	e, ok := c.byType[reflect.TypeOf(ev)]
	if !ok {
		return "", 0, fmt.Errorf("%w: Go type %T is not registered", ErrUnknownEventType, ev)
	}
	return e.name, e.version, nil
}

// Encode builds the EventData of an event value.
func (c *Codec) Encode(id uuid.UUID, ev any, md Metadata) (EventData, error) {
	name, version, err := c.Name(ev)
	if err != nil {
		return EventData{}, err
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return EventData{}, fmt.Errorf("encode %s: %w", name, err)
	}
	return EventData{ID: id, Type: name, SchemaVersion: version, Payload: payload, Metadata: md}, nil
}

// Decode reads a payload of the given name and schema version as the current Go value.
func (c *Codec) Decode(name string, version int, payload []byte) (any, error) {
	e, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEventType, name)
	}
	if version > e.version {
		return nil, fmt.Errorf("%w: %s v%d is newer than this build reads (v%d)", ErrUnknownEventType, name, version, e.version)
	}
	raw := json.RawMessage(payload)
	for v := version; v < e.version; v++ {
		up, ok := c.upcasters[nameVersion{name, v}]
		if !ok {
			return nil, fmt.Errorf("%w: no upcaster for %s v%d", ErrUnknownEventType, name, v)
		}
		var err error
		if raw, err = up(raw); err != nil {
			return nil, fmt.Errorf("upcast %s v%d: %w", name, v, err)
		}
	}
	ptr := reflect.New(e.typ)
	if err := json.Unmarshal(raw, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", name, version, err)
	}
	return ptr.Elem().Interface(), nil
}

// DecodeEnvelope decodes a stored event's payload.
func (c *Codec) DecodeEnvelope(env Envelope) (any, error) {
	return c.Decode(env.Type, env.SchemaVersion, env.Payload)
}

// DecodeDomain decodes a stored event as a domain event.
func (c *Codec) DecodeDomain(env Envelope) (domain.Event, error) {
	v, err := c.DecodeEnvelope(env)
	if err != nil {
		return nil, err
	}
	ev, ok := v.(domain.Event)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a domain event", ErrUnknownEventType, env.Type)
	}
	return ev, nil
}
