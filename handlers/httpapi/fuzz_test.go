package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// The decoders either refuse with a 400 problem or give a value that survives a round
// trip through JSON unchanged; never a panic, never another status. Their seeds are in
// testdata/fuzz/<name>; plain `go test` runs them, `go test -fuzz <name>` explores.

func checkDecoder[T any](t *testing.T, body []byte, decode func([]byte) (T, error)) {
	v, err := decode(body)
	if err != nil {
		if p := problemFor(err); p.Status != http.StatusBadRequest || p.Code != CodeMalformed {
			t.Fatalf("refusal %v maps to %d %s, want 400 %s", err, p.Status, p.Code, CodeMalformed)
		}
		return
	}
	again, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted %q but cannot encode %#v: %v", body, v, err)
	}
	w, err := decode(again)
	if err != nil {
		t.Fatalf("accepted %q, but not its own encoding %s: %v", body, again, err)
	}
	if !reflect.DeepEqual(v, w) {
		t.Fatalf("round trip changed the value:\n%#v\n%#v", v, w)
	}
}

func FuzzDecodeOpenSubscription(f *testing.F) {
	f.Add([]byte(`{"ownerId":"c1","holder":{"name":"Mario","email":"m@example.com"},"language":"it","services":[{"kind":"base","quantity":1,"expiresOn":"2027-03-31"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeOpenSubscription) })
}

func FuzzDecodeRequestSpace(f *testing.F) {
	f.Add([]byte(`{"subscriptionId":"6f1c2b1e-8d7a-4c1e-9b0a-1d2e3f405060","gb":1,"channel":"app"}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeRequestSpace) })
}

func FuzzDecodeCoTermination(f *testing.F) {
	f.Add([]byte(`{"enabled":false}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeCoTermination) })
}

func FuzzDecodeModify(f *testing.F) {
	f.Add([]byte(`{"gb":2,"coTermination":true}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeModify) })
}

func FuzzDecodeConfirm(f *testing.F) {
	f.Add([]byte(`{"acceptGeneralConditions":true,"approveUnfairTerms":true,"acknowledgePrivacy":true,"termsVersion":"2026-01"}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeConfirm) })
}

func FuzzDecodePayment(f *testing.F) {
	f.Add([]byte(`{"amountCents":7930,"method":"card","reference":"TRN-1"}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodePayment) })
}

func FuzzDecodeUsage(f *testing.F) {
	f.Add([]byte(`{"usedBytes":123456}`))
	f.Fuzz(func(t *testing.T, body []byte) { checkDecoder(t, body, DecodeUsage) })
}

func FuzzParseIfMatch(f *testing.F) {
	f.Add(`"3"`)
	f.Fuzz(func(t *testing.T, h string) {
		v, err := ParseIfMatch(h)
		if err != nil {
			if p := problemFor(err); p.Status != http.StatusBadRequest {
				t.Fatalf("refusal maps to %d", p.Status)
			}
			return
		}
		if v != nil {
			w, err := ParseIfMatch(etag(*v))
			if err != nil || w == nil || *w != *v {
				t.Fatalf("%q -> %d, but its ETag %s reads %v %v", h, *v, etag(*v), w, err)
			}
		}
	})
}
