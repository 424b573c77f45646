package notifications_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/handlers/notifications"
)

func head() notifications.Envelope {
	return notifications.Envelope{
		EventID:        uuid.MustParse("6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01"),
		OccurredAt:     time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC),
		CorrelationID:  "corr-1",
		OrderID:        uuid.MustParse("0d8b8a9e-2c54-4d8e-8c5b-3a8a0e6f1a22"),
		SubscriptionID: uuid.MustParse("7c0f6f0e-57b4-4b8b-9a4e-4b6c2f4a1d33"),
	}
}

func confirmed() notifications.OrderConfirmedV1 {
	return notifications.OrderConfirmedV1{
		OwnerID:   "cust-1",
		Recipient: notifications.Recipient{Name: "Mario Rossi", Email: "mario@example.it", Language: "it"},
		Quote: notifications.Quote{
			OrderDate: notifications.Date{Year: 2026, Month: 3, Day: 10}, NewExpiry: notifications.Date{Year: 2027, Month: 3, Day: 10},
			CoTermination: true, GB: 1, SpaceMonths: 12,
			Lines: []notifications.QuoteLine{
				{Kind: notifications.KindSpace, Quantity: 1, Months: 12, UnitCents: 2500, NetCents: 2500, NewExpiry: notifications.Date{Year: 2027, Month: 3, Day: 10}},
				{Kind: "base", Label: notifications.Text{"it": "Servizio", "en": "Service"}, Quantity: 1, Months: 9, UnitCents: 250, NetCents: 2250,
					OldExpiry: notifications.Date{Year: 2026, Month: 6, Day: 30}, NewExpiry: notifications.Date{Year: 2027, Month: 3, Day: 10}},
			},
			NetCents: 4750, VATPercent: 22, VATCents: 1045, TotalCents: 5795, Currency: "EUR",
		},
		PaymentMethod: notifications.PaymentMethod{Code: "bank-transfer", Label: notifications.Text{"it": "Bonifico"},
			Instructions: notifications.Text{"it": "Paga"}, Beneficiary: "FE S.p.A.", IBAN: "IT60X0542811101000000123456"},
		ConfirmedAt:              time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC),
		PayBy:                    notifications.Date{Year: 2026, Month: 4, Day: 9},
		ExpectedRegistrationOn:   notifications.Date{Year: 2026, Month: 3, Day: 13},
		ExpectedRegistrationDays: 3,
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	body, err := notifications.Encode(head(), confirmed())
	if err != nil {
		t.Fatal(err)
	}
	// The wire form a consumer in any language reads.
	for _, want := range []string{`"type":"OrderConfirmed"`, `"version":1`, `"eventId":"6f1d3c52-`, `"correlationId":"corr-1"`,
		`"orderId":"0d8b8a9e-`, `"payBy":"2026-04-09"`, `"totalCents":5795`, `"label":{"en":"Service","it":"Servizio"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	env, p, err := notifications.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := head()
	want.Type, want.Version = notifications.TypeOrderConfirmed, 1
	env.Data = nil
	if !reflect.DeepEqual(env, want) {
		t.Errorf("envelope %+v, want %+v", env, want)
	}
	if got, ok := p.(notifications.OrderConfirmedV1); !ok || !reflect.DeepEqual(got, confirmed()) {
		t.Errorf("payload %#v", p)
	}
}

// A consumer refuses a version it does not know, and says which it reads, rather than guess.
func TestUnknownVersionIsRefusedClearly(t *testing.T) {
	body, _ := notifications.Encode(head(), confirmed())
	for _, v := range []int{0, 2, -1} {
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		m["version"] = v
		b, _ := json.Marshal(m)
		env, _, err := notifications.Decode(b)
		if !errors.Is(err, notifications.ErrUnknownVersion) {
			t.Fatalf("version %d: %v, want ErrUnknownVersion", v, err)
		}
		if !strings.Contains(err.Error(), "OrderConfirmed version") || !strings.Contains(err.Error(), "[1]") {
			t.Errorf("version %d: error %q does not say what is known", v, err)
		}
		// The head is still read: the consumer can log and route what it refuses.
		if env.EventID != head().EventID || env.OrderID != head().OrderID {
			t.Errorf("version %d: head %+v", v, env)
		}
	}
}

func TestMalformedAndUnknownMessagesAreRefused(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		want error
	}{
		"not json":      {`{"type":`, notifications.ErrMalformed},
		"no type":       {`{"version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{}}`, notifications.ErrMalformed},
		"no event id":   {`{"type":"OrderPaid","version":1,"data":{}}`, notifications.ErrMalformed},
		"bad event id":  {`{"type":"OrderPaid","version":1,"eventId":"x","data":{}}`, notifications.ErrMalformed},
		"no data":       {`{"type":"OrderPaid","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01"}`, notifications.ErrMalformed},
		"data retyped":  {`{"type":"OrderPaid","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{"paidCents":"ten"}}`, notifications.ErrMalformed},
		"bad date":      {`{"type":"OrderPaid","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{"grantedUntil":"2026-02-30"}}`, notifications.ErrMalformed},
		"unknown type":  {`{"type":"CheckoutStarted","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{}}`, notifications.ErrUnknownType},
		"outside, v0":   {`{"type":"OrderPaid","version":0,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{}}`, notifications.ErrUnknownVersion},
		"legacy relay":  {`{"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","type":"OrderPaid","schemaVersion":1,"payload":{}}`, notifications.ErrUnknownVersion},
		"version float": {`{"type":"OrderPaid","version":1.5,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{}}`, notifications.ErrMalformed},
	} {
		_, _, err := notifications.Decode([]byte(c.body))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// Within a version, fields may be added: a consumer reads a message with fields it does not
// know as it read it before.
func TestUnknownFieldsAreIgnoredWithinAVersion(t *testing.T) {
	body := `{"type":"OrderCancelled","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","later":true,
		"data":{"reason":"changed mind","cancelledAt":"2026-03-11T10:00:00Z","refundChannel":"card"}}`
	_, p, err := notifications.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := p.(notifications.OrderCancelledV1); !ok || c.Reason != "changed mind" {
		t.Fatalf("payload %#v", p)
	}
}

// Every type of the contract decodes its own encoding, and a message outside the contract
// is kept as it is but never decoded as one of its types.
func TestEveryTypeRoundTripsAndOutsideMessagesStayOutside(t *testing.T) {
	for _, p := range []notifications.Payload{
		notifications.SubscriptionOpenedV1{OwnerID: "o", BaseGB: 1, OpenedOn: notifications.Date{Year: 2026, Month: 1, Day: 31}},
		notifications.SpaceAddedV1{GB: 2}, notifications.ServicesExtendedV1{}, notifications.SpaceExtendedV1{},
		confirmed(), notifications.PaymentRegisteredV1{AmountCents: 5}, notifications.OrderPaidV1{PaidCents: 5},
		notifications.OrderCancelledV1{Reason: "r"}, notifications.OrderExpiredV1{}, notifications.OrderOverdueV1{DueCents: 1},
		notifications.OrderAbandonedV1{}, notifications.CreditDueV1{Reason: "excess"},
	} {
		body, err := notifications.Encode(head(), p)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := notifications.Decode(body)
		if err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: %#v, %v", p.MessageType(), got, err)
		}
	}
	if n := len(notifications.Types()); n != 12 {
		t.Errorf("%d types", n)
	}
	h := head()
	h.Type = "CheckoutStarted"
	body, err := notifications.EncodeOutside(h, json.RawMessage(`{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := notifications.Parse(body)
	if err != nil || env.Version != notifications.VersionOutside || string(env.Data) != `{"x":1}` {
		t.Fatalf("outside message %+v, %v", env, err)
	}
	if _, err := notifications.EncodeOutside(h, json.RawMessage(`{`)); !errors.Is(err, notifications.ErrMalformed) {
		t.Fatalf("outside message with bad data: %v", err)
	}
}

func TestDateIsARomeCivilDate(t *testing.T) {
	// 23:30 UTC on 31 March is already 1 April in Rome (summer time).
	if got := notifications.DateOf(time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC)); got != (notifications.Date{Year: 2026, Month: 4, Day: 1}) {
		t.Fatalf("DateOf: %v", got)
	}
	a, b := notifications.Date{Year: 2026, Month: 4, Day: 1}, notifications.Date{Year: 2026, Month: 3, Day: 31}
	if !a.After(b) || b.After(a) || a.After(a) {
		t.Fatal("After")
	}
	if _, err := json.Marshal(notifications.Date{Year: 12026, Month: 1, Day: 1}); err == nil {
		t.Fatal("a five-digit year was written")
	}
}

// FuzzDecode: whatever the bytes, Decode answers (no panic); what it accepts is a message of
// a known type and version, that encodes again to a body decoding to the same payload.
func FuzzDecode(f *testing.F) {
	body, _ := notifications.Encode(head(), confirmed())
	f.Add(body)
	paid, _ := notifications.Encode(head(), notifications.OrderPaidV1{PaidCents: 100, GrantedUntil: notifications.Date{Year: 2027, Month: 2, Day: 28}})
	f.Add(paid)
	f.Add([]byte(`{"type":"OrderPaid","version":2,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":{}}`))
	f.Add([]byte(`{"type":"OrderCancelled","version":1,"eventId":"6f1d3c52-8f1e-4c55-9d51-0b9a3f1f4e01","data":null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, p, err := notifications.Decode(b)
		if err != nil {
			if !errors.Is(err, notifications.ErrMalformed) && !errors.Is(err, notifications.ErrUnknownType) && !errors.Is(err, notifications.ErrUnknownVersion) {
				t.Fatalf("error of no kind: %v", err)
			}
			return
		}
		if p.MessageType() != env.Type || p.MessageVersion() != env.Version {
			t.Fatalf("%s v%d decoded as %s v%d", env.Type, env.Version, p.MessageType(), p.MessageVersion())
		}
		if !contains(notifications.Versions(env.Type), env.Version) {
			t.Fatalf("accepted %s v%d, not in %v", env.Type, env.Version, notifications.Versions(env.Type))
		}
		again, err := notifications.Encode(env, p)
		if err != nil {
			return // a value JSON cannot write back (a date with a five-digit year): refused on the way out
		}
		_, p2, err := notifications.Decode(again)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v\n%s", err, again)
		}
		// Compared as JSON: an empty text and none, or two zones of the same offset, are
		// the same message.
		j1, _ := json.Marshal(p)
		j2, _ := json.Marshal(p2)
		if string(j1) != string(j2) {
			t.Fatalf("re-encoded message reads\n%s\nfirst\n%s", j2, j1)
		}
	})
}

func contains(vs []int, v int) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
