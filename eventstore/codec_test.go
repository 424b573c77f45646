package eventstore_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

func TestEveryDomainEventRoundTripsUnderItsStableName(t *testing.T) {
	c := eventstore.DomainCodec()
	day := domain.Date{Year: 2026, Month: time.March, Day: 15}
	for _, et := range domain.EventTypes() {
		name, version, err := c.Name(et.Zero)
		if err != nil || name != et.Name || version != et.Version {
			t.Fatalf("%T: name %q v%d, %v; want %q v%d", et.Zero, name, version, err, et.Name, et.Version)
		}
		// A value with some fields set, so that the round trip means something.
		v := reflect.New(reflect.TypeOf(et.Zero)).Elem()
		for i := range v.NumField() {
			switch f := v.Field(i); f.Interface().(type) {
			case uuid.UUID:
				f.Set(reflect.ValueOf(uuid.New()))
			case string:
				f.SetString("è «x» \u202e")
			case int, int64:
				f.SetInt(42)
			case domain.Date:
				f.Set(reflect.ValueOf(day))
			}
		}
		d, err := c.Encode(uuid.New(), v.Interface(), eventstore.Metadata{Actor: "a"})
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decode(d.Type, d.SchemaVersion, d.Payload)
		if err != nil {
			t.Fatalf("%s: %v", d.Type, err)
		}
		if !reflect.DeepEqual(back, v.Interface()) {
			t.Fatalf("%s: %+v came back as %+v", d.Type, v.Interface(), back)
		}
	}
}

// A test event in two versions: v1 had the amount in euros as a string, v2 has cents.
type priceSet struct {
	Cents int64 `json:"cents"`
}

func TestAnOlderVersionIsUpcastOnRead(t *testing.T) {
	c := eventstore.NewCodec()
	c.Register("PriceSet", 2, priceSet{})
	c.RegisterUpcaster("PriceSet", 1, func(p json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			Euros string `json:"euros"`
		}
		if err := json.Unmarshal(p, &v1); err != nil {
			return nil, err
		}
		whole, frac, _ := strings.Cut(v1.Euros, ".")
		return json.RawMessage(`{"cents":` + strings.TrimLeft(whole+frac, "0") + `}`), nil
	})
	got, err := c.Decode("PriceSet", 1, []byte(`{"euros":"12.50"}`))
	if err != nil || got != (priceSet{Cents: 1250}) {
		t.Fatalf("v1 read as %+v, %v; want {1250}", got, err)
	}
	got, err = c.Decode("PriceSet", 2, []byte(`{"cents":99}`))
	if err != nil || got != (priceSet{Cents: 99}) {
		t.Fatalf("v2 read as %+v, %v", got, err)
	}
	if _, err := c.Decode("PriceSet", 3, []byte(`{}`)); !errors.Is(err, eventstore.ErrUnknownEventType) {
		t.Fatalf("a version newer than the build: %v", err)
	}
	c.Register("Other", 3, struct{ X int }{})
	if _, err := c.Decode("Other", 1, []byte(`{}`)); !errors.Is(err, eventstore.ErrUnknownEventType) {
		t.Fatalf("no upcaster from v1: %v", err)
	}
	if _, err := c.Decode("Nope", 1, []byte(`{}`)); !errors.Is(err, eventstore.ErrUnknownEventType) {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestStreamNamesAreCategoryDashUUID(t *testing.T) {
	id := uuid.New()
	cat, got, err := eventstore.ParseStream(eventstore.StreamName("order", id))
	if err != nil || cat != "order" || got != id {
		t.Fatalf("parse: %q %s %v", cat, got, err)
	}
	for _, bad := range []string{"", "order", "order-" + id.String()[:35], "Order-" + id.String(), "order-" + strings.ToUpper(id.String()),
		"order_" + id.String(), "-" + id.String(), "or der-" + id.String(), "order-" + id.String() + "\n", "../order-" + id.String()} {
		if _, _, err := eventstore.ParseStream(bad); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestExpectedVersions(t *testing.T) {
	cases := []struct {
		e            eventstore.Expected
		last         uint64
		exists, want bool
	}{
		{eventstore.Any, 0, false, true}, {eventstore.Any, 7, true, true},
		{eventstore.NoStream, 0, false, true}, {eventstore.NoStream, 0, true, false},
		{eventstore.StreamExists, 0, false, false}, {eventstore.StreamExists, 3, true, true},
		{eventstore.Exact(3), 3, true, true}, {eventstore.Exact(3), 4, true, false}, {eventstore.Exact(0), 0, false, false},
	}
	for _, c := range cases {
		if got := c.e.Check(c.last, c.exists); got != c.want {
			t.Errorf("%s on last=%d exists=%v: %v", c.e, c.last, c.exists, got)
		}
	}
}

func TestHashChangesWithAnyByte(t *testing.T) {
	d := eventstore.EventData{ID: uuid.New(), Type: "T", SchemaVersion: 1, Payload: []byte(`{"a":1}`), Metadata: eventstore.Metadata{Actor: "x"}}
	h := eventstore.Hash("order-"+uuid.NewString(), 0, d)
	same := eventstore.Hash("order-"+uuid.NewString(), 0, d)
	if h == same {
		t.Fatal("another stream, same hash")
	}
	stream := "order-" + uuid.NewString()
	base := eventstore.Hash(stream, 3, d)
	if eventstore.Hash(stream, 3, d) != base {
		t.Fatal("not deterministic")
	}
	if eventstore.Hash(stream, 4, d) == base {
		t.Fatal("another version, same hash")
	}
	spaced := d
	spaced.Payload = []byte(`{ "a" : 1 }`)
	if eventstore.Hash(stream, 3, spaced) != base {
		t.Fatal("whitespace in storage changed the hash")
	}
	for _, change := range []func(*eventstore.EventData){
		func(e *eventstore.EventData) { e.Payload = []byte(`{"a":2}`) },
		func(e *eventstore.EventData) { e.Type = "U" },
		func(e *eventstore.EventData) { e.SchemaVersion = 2 },
		func(e *eventstore.EventData) { e.ID = uuid.New() },
		func(e *eventstore.EventData) { e.Metadata.PrevHash = "00" },
		func(e *eventstore.EventData) { e.Metadata.Channel = "app" },
	} {
		c := d
		change(&c)
		if eventstore.Hash(stream, 3, c) == base {
			t.Fatalf("a change left the hash as it was: %+v", c)
		}
	}
}

func TestValidateAppendRefusesBeforeAnythingIsWritten(t *testing.T) {
	stream := "order-" + uuid.NewString()
	ok := eventstore.EventData{ID: uuid.New(), Type: "T", SchemaVersion: 1, Payload: []byte(`{}`)}
	if err := eventstore.ValidateAppend(stream, []eventstore.EventData{ok}); err != nil {
		t.Fatal(err)
	}
	big := ok
	big.Payload = []byte(`"` + strings.Repeat("x", eventstore.MaxPayload) + `"`)
	for name, evs := range map[string][]eventstore.EventData{
		"none":           nil,
		"no id":          {{Type: "T", SchemaVersion: 1, Payload: []byte(`{}`)}},
		"empty type":     {{ID: uuid.New(), SchemaVersion: 1, Payload: []byte(`{}`)}},
		"version 0":      {{ID: uuid.New(), Type: "T", Payload: []byte(`{}`)}},
		"not JSON":       {{ID: uuid.New(), Type: "T", SchemaVersion: 1, Payload: []byte(`{`)}},
		"over the size":  {big},
		"one bad of two": {ok, {ID: uuid.New(), Type: "T", SchemaVersion: 1, Payload: []byte(`nope`)}},
	} {
		if err := eventstore.ValidateAppend(stream, evs); !errors.Is(err, eventstore.ErrInvalidAppend) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := eventstore.ValidateAppend("bad name", []eventstore.EventData{ok}); !errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Errorf("bad stream name: %v", err)
	}
}

// FuzzDecode feeds the codec stored payloads of every event type: whatever the bytes, it
// answers a value or an error, never a panic.
func FuzzDecode(f *testing.F) {
	c := eventstore.DomainCodec()
	for _, et := range domain.EventTypes() {
		b, _ := json.Marshal(et.Zero)
		f.Add(et.Name, et.Version, b)
	}
	f.Add("OrderConfirmed", 1, []byte(`{"quote":{"lines":[{"oldExpiry":"2026-02-30"}]}}`))
	f.Add("SpaceAdded", 1, []byte(`{"gb":1e400}`))
	f.Fuzz(func(t *testing.T, name string, version int, payload []byte) {
		v, err := c.Decode(name, version, payload)
		if err == nil && v == nil {
			t.Fatal("no value and no error")
		}
	})
}
