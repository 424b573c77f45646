package httpapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// Every refusal path answers its status and a stable problem type.
func TestRefusals(t *testing.T) {
	e := start(t, nil)
	op := e.token(tokens.RoleOperator, "op-1")
	pay := e.token(tokens.RolePayments, "gateway")
	owner := "cust-r"
	cu := e.token(tokens.RoleCustomer, owner)
	subID, cart := e.newOrder(owner, "app") // an order in the cart
	_, confirmed, _ := e.confirmedOrder("cust-c")
	cc := e.token(tokens.RoleCustomer, "cust-c")
	_, paid, paidTotal := e.confirmedOrder("cust-p")
	must(t, e.do("POST", "/v1/orders/"+paid+"/payments", pay, map[string]any{"amountCents": paidTotal, "method": "card", "reference": "P-1"}), 200)
	cp := e.token(tokens.RoleCustomer, "cust-p")
	_, cancelled := e.newOrder("cust-x", "panel")
	cx := e.token(tokens.RoleCustomer, "cust-x")
	must(t, e.do("POST", "/v1/orders/"+cancelled+"/cancel", cx, nil), 200)

	otherKey := func() string {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		tok, _ := tokens.Mint(k, tokens.RoleOperator, "op-1", time.Hour)
		return tok
	}()
	expired := func() string {
		c := tokens.Claims{Role: "operator", RegisteredClaims: jwt.RegisteredClaims{Subject: "op-1", Audience: jwt.ClaimStrings{tokens.Audience},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour))}}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(e.key)
		return tok
	}()
	hs256 := func() string {
		c := tokens.Claims{Role: "operator", RegisteredClaims: jwt.RegisteredClaims{Subject: "op-1", Audience: jwt.ClaimStrings{tokens.Audience},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(e.key.Public().(ed25519.PublicKey)))
		return tok
	}()
	big := `{"method":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`
	o := "/v1/orders/" + cart
	year := time.Now().Year() + 1

	cases := []struct {
		name         string
		method, path string
		token        string
		body         any
		hdr          []string
		status       int
		code         string
	}{
		{"malformed JSON", "POST", o + "/payment-method", cu, `{"method":`, nil, 400, httpapi.CodeMalformed},
		{"unknown field", "POST", o + "/co-termination", cu, `{"enabled":true,"colour":"red"}`, nil, 400, httpapi.CodeMalformed},
		{"missing enabled", "POST", o + "/co-termination", cu, `{}`, nil, 400, httpapi.CodeMalformed},
		{"wrong JSON type", "POST", "/v1/orders", cu, `{"subscriptionId":"` + subID + `","gb":"one","channel":"app"}`, nil, 400, httpapi.CodeMalformed},
		{"two JSON values", "POST", o + "/checkout", cu, `{} {}`, nil, 400, httpapi.CodeMalformed},
		{"bad date", "POST", "/v1/subscriptions", op, `{"ownerId":"a","holder":{"name":"a","email":"a@b.it"},"language":"it","services":[{"kind":"base","quantity":1,"expiresOn":"2026-02-30"}]}`, nil, 400, httpapi.CodeMalformed},
		{"bad If-Match", "POST", o + "/checkout", cu, nil, []string{"If-Match", `"v3"`}, 400, httpapi.CodeMalformed},
		{"no token", "GET", o, "", nil, nil, 401, httpapi.CodeUnauthorized},
		{"token of another key", "GET", o, otherKey, nil, nil, 401, httpapi.CodeUnauthorized},
		{"expired token", "GET", o, expired, nil, nil, 401, httpapi.CodeUnauthorized},
		{"HS256 token signed with the public key", "GET", o, hs256, nil, nil, 401, httpapi.CodeUnauthorized},
		{"garbage token", "GET", o, "not.a.jwt", nil, nil, 401, httpapi.CodeUnauthorized},
		{"role not allowed", "POST", o + "/payments", cu, map[string]any{"amountCents": 1, "method": "card", "reference": "x"}, nil, 403, httpapi.CodeForbidden},
		{"unknown role", "GET", o, e.tokenUnchecked("root", "x"), nil, nil, 403, httpapi.CodeForbidden},
		{"unknown order", "GET", "/v1/orders/" + uuid.NewString(), op, nil, nil, 404, "unknown-order"},
		{"malformed order id", "POST", "/v1/orders/nope/checkout", cu, nil, nil, 404, "unknown-order"},
		{"unknown subscription", "POST", "/v1/orders", e.token(tokens.RoleCustomer, "nobody"), map[string]any{"subscriptionId": uuid.NewString(), "channel": "app"}, nil, 404, "unknown-subscription"},
		{"unknown route", "GET", "/v1/nothing", op, nil, nil, 404, httpapi.CodeNotFound},
		{"method not allowed", "DELETE", o, op, nil, nil, 405, httpapi.CodeMethodNotAllowed},
		{"second order in progress", "POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "app"}, nil, 409, "order-in-progress"},
		{"payment method in the cart", "POST", o + "/payment-method", cu, map[string]any{"method": "card"}, nil, 409, "order-not-at-checkout"},
		{"confirm in the cart", "POST", o + "/confirm", cu, confirmBody(), nil, 409, "order-not-at-checkout"},
		{"modify after confirm", "POST", "/v1/orders/" + confirmed + "/modify", cc, map[string]any{"gb": 2}, nil, 409, "order-already-confirmed"},
		{"toggle after confirm", "POST", "/v1/orders/" + confirmed + "/co-termination", cc, map[string]any{"enabled": false}, nil, 409, "order-already-confirmed"},
		{"cancel a paid order", "POST", "/v1/orders/" + paid + "/cancel", cp, nil, nil, 409, "order-already-paid"},
		{"checkout a cancelled order", "POST", "/v1/orders/" + cancelled + "/checkout", cx, nil, nil, 409, "order-cancelled"},
		{"subscription exists", "POST", "/v1/subscriptions", op, withID(subscriptionBody(owner), subID), nil, 409, "subscription-exists"},
		{"stale If-Match", "POST", o + "/co-termination", cu, map[string]any{"enabled": false}, []string{"If-Match", `"7"`}, 412, httpapi.CodePreconditionFailed},
		{"body over 64 KiB", "POST", o + "/payment-method", cu, big, nil, 413, httpapi.CodeBodyTooLarge},
		{"text/plain", "POST", o + "/payment-method", cu, `{"method":"card"}`, []string{"Content-Type", "text/plain"}, 415, httpapi.CodeUnsupportedMediaType},
		{"form", "POST", "/v1/subscriptions", op, `ownerId=a`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, httpapi.CodeUnsupportedMediaType},
		{"zero GB", "POST", o + "/modify", cu, map[string]any{"gb": 0}, nil, 422, "invalid-quantity"},
		{"too many GB", "POST", o + "/modify", cu, map[string]any{"gb": 101}, nil, 422, "invalid-quantity"},
		{"unknown channel", "POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "fax"}, nil, 422, "invalid-channel"},
		{"unknown payment method", "POST", "/v1/orders/" + confirmed + "/payments", pay, map[string]any{"amountCents": 1, "method": "cash", "reference": "R"}, nil, 422, "unknown-payment-method"},
		{"payment over the largest amount", "POST", "/v1/orders/" + confirmed + "/payments", pay, map[string]any{"amountCents": int64(1) << 62, "method": "card", "reference": "R"}, nil, 422, "amount-out-of-range"},
		{"users beyond the maximum", "POST", "/v1/subscriptions", op, map[string]any{"ownerId": "a", "holder": map[string]any{"name": "A", "email": "a@b.it"}, "language": "it",
			"services": []any{map[string]any{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-01-01", year)},
				map[string]any{"kind": "users", "quantity": int64(9223372036854775807), "expiresOn": fmt.Sprintf("%d-01-01", year)}}}, nil, 422, "invalid-services"},
		{"usage beyond 1 PiB", "POST", "/v1/subscriptions/" + subID + "/usage", op, map[string]any{"usedBytes": int64(1) << 62}, nil, 422, "invalid-usage"},
		{"payment without reference", "POST", "/v1/orders/" + confirmed + "/payments", pay, map[string]any{"amountCents": 1, "method": "card"}, nil, 422, "payment-reference-missing"},
		{"zero payment", "POST", "/v1/orders/" + confirmed + "/payments", pay, map[string]any{"amountCents": 0, "method": "card", "reference": "R"}, nil, 422, "invalid-amount"},
		{"bad holder", "POST", "/v1/subscriptions", op, map[string]any{"ownerId": "a", "holder": map[string]any{"name": "A", "email": "A <a@b.it>"}, "language": "it",
			"services": []any{map[string]any{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-01-01", year)}}}, nil, 422, "invalid-holder"},
		{"bad language", "POST", "/v1/subscriptions", op, map[string]any{"ownerId": "a", "holder": map[string]any{"name": "A", "email": "a@b.it"}, "language": "de",
			"services": []any{map[string]any{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-01-01", year)}}}, nil, 422, "invalid-language"},
		{"no base service", "POST", "/v1/subscriptions", op, map[string]any{"ownerId": "a", "holder": map[string]any{"name": "A", "email": "a@b.it"}, "language": "it",
			"services": []any{}}, nil, 422, "invalid-services"},
		{"negative usage", "POST", "/v1/subscriptions/" + subID + "/usage", op, map[string]any{"usedBytes": -1}, nil, 422, "invalid-usage"},
	}
	for _, acceptance := range []struct{ field, code string }{
		{"acceptGeneralConditions", "general-conditions-not-accepted"},
		{"approveUnfairTerms", "unfair-terms-not-approved"},
		{"acknowledgePrivacy", "privacy-not-acknowledged"},
		{"termsVersion", "terms-version-missing"},
	} {
		_, id := e.newOrder("cust-a-"+acceptance.field, "app")
		tok := e.token(tokens.RoleCustomer, "cust-a-"+acceptance.field)
		must(t, e.do("POST", "/v1/orders/"+id+"/checkout", tok, nil), 200)
		if acceptance.field == "acceptGeneralConditions" { // first: the method is missing
			wantProblem(t, e.do("POST", "/v1/orders/"+id+"/confirm", tok, confirmBody()), 422, "payment-method-missing")
		}
		must(t, e.do("POST", "/v1/orders/"+id+"/payment-method", tok, map[string]any{"method": "paypal"}), 200)
		body := confirmBody()
		if acceptance.field == "termsVersion" {
			body[acceptance.field] = " "
		} else {
			body[acceptance.field] = false
		}
		cases = append(cases, struct {
			name         string
			method, path string
			token        string
			body         any
			hdr          []string
			status       int
			code         string
		}{"confirm without " + acceptance.field, "POST", "/v1/orders/" + id + "/confirm", tok, body, nil, 422, acceptance.code})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.head()
			wantProblem(t, e.do(c.method, c.path, c.token, c.body, c.hdr...), c.status, c.code)
			if after := e.head(); after != before {
				t.Fatalf("a refused request appended: head %d -> %d", before, after)
			}
		})
	}
}

func withID(body map[string]any, id string) map[string]any {
	body["subscriptionId"] = id
	return body
}

// tokenUnchecked signs any role, even one the API does not know.
func (e *env) tokenUnchecked(role, sub string) string {
	c := tokens.Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{Subject: sub, Audience: jwt.ClaimStrings{tokens.Audience},
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(e.key)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// 200 requests at once for one subscription: one order, the rest refused as in progress.
func TestOneOrderUnder200ConcurrentRequests(t *testing.T) {
	e := start(t, nil)
	subID := e.openSubscription("cust-race")
	cu := e.token(tokens.RoleCustomer, "cust-race")
	const n = 200
	statuses := make([]int, n)
	types := make([]string, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r := e.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "app"})
			statuses[i] = r.status
			if r.status != http.StatusCreated {
				types[i] = r.str(t, "type")
			}
		}()
	}
	close(gate)
	wg.Wait()
	created := 0
	for i, s := range statuses {
		switch {
		case s == http.StatusCreated:
			created++
		case s == http.StatusConflict && types[i] == httpapi.ProblemBase+"order-in-progress":
		default:
			t.Errorf("request %d: %d %s", i, s, types[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d orders created, want exactly 1", created)
	}
	envs := e.events(command.SubscriptionCategory, subID)
	if n := countTypes(envs, "OrderSlotReserved"); n != 1 {
		t.Fatalf("%d slots reserved, want 1", n)
	}
	all, err := e.a.Store.ReadAll(t.Context(), 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if n := countTypes(all, "SpaceIncreaseRequested"); n != 1 {
		t.Fatalf("%d orders in the log, want 1", n)
	}
}

// Same key and body: the first answer again and nothing appended; other body: 422.
func TestIdempotencyKeys(t *testing.T) {
	e := start(t, nil)
	subID := e.openSubscription("cust-idem")
	cu := e.token(tokens.RoleCustomer, "cust-idem")
	body := map[string]any{"subscriptionId": subID, "channel": "panel"}
	first := must(t, e.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "k-1"), http.StatusCreated)
	head := e.head()
	again := must(t, e.do("POST", "/v1/orders", cu, body, "Idempotency-Key", "k-1"), http.StatusCreated)
	if string(again.body) != string(first.body) || again.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("replay differs:\n%s\n%s", first.body, again.body)
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Error("replay not marked")
	}
	if e.head() != head {
		t.Fatal("the replay appended")
	}
	wantProblem(t, e.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "app"}, "Idempotency-Key", "k-1"),
		422, httpapi.CodeIdempotencyKeyReused)
	// Without the key, the same request is a second order: refused.
	wantProblem(t, e.do("POST", "/v1/orders", cu, body), 409, "order-in-progress")

	// A refusal is an answer too: replayed as it was.
	orderID := first.str(t, "orderId")
	r1 := e.do("POST", "/v1/orders/"+orderID+"/confirm", cu, confirmBody(), "Idempotency-Key", "k-2")
	wantProblem(t, r1, 409, "order-not-at-checkout")
	must(t, e.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil, "Idempotency-Key", "k-3"), 200)
	head = e.head()
	r2 := must(t, e.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil, "Idempotency-Key", "k-3"), 200)
	if r2.header.Get("Idempotent-Replayed") != "true" || e.head() != head {
		t.Fatal("checkout replay was not a replay")
	}
	// Keys belong to their caller: another customer's same key is its own.
	other := e.token(tokens.RoleCustomer, "cust-other")
	wantProblem(t, e.do("POST", "/v1/orders/"+orderID+"/checkout", other, nil, "Idempotency-Key", "k-3"), 404, "unknown-order")

	// Concurrent retries of one key: one execution, every answer the same.
	subID2 := e.openSubscription("cust-idem2")
	cu2 := e.token(tokens.RoleCustomer, "cust-idem2")
	var wg sync.WaitGroup
	answers := make([]resp, 20)
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = e.do("POST", "/v1/orders", cu2, map[string]any{"subscriptionId": subID2, "channel": "app"}, "Idempotency-Key", "same")
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.status != http.StatusCreated || string(a.body) != string(answers[0].body) {
			t.Fatalf("concurrent retry answered %d %s", a.status, a.body)
		}
	}
}

func TestIfMatch(t *testing.T) {
	e := start(t, nil)
	_, orderID := e.newOrder("cust-im", "app")
	cu := e.token(tokens.RoleCustomer, "cust-im")
	path := "/v1/orders/" + orderID
	r := must(t, e.do("GET", path, cu, nil), 200)
	tag := r.header.Get("ETag")
	if tag != `"0"` {
		t.Fatalf("ETag %q", tag)
	}
	r = must(t, e.do("POST", path+"/co-termination", cu, map[string]any{"enabled": false}, "If-Match", tag), 200)
	if r.header.Get("ETag") != `"1"` || r.json(t)["version"].(float64) != 1 {
		t.Fatalf("after toggle: %s %s", r.header.Get("ETag"), r.body)
	}
	head := e.head()
	wantProblem(t, e.do("POST", path+"/checkout", cu, nil, "If-Match", tag), 412, httpapi.CodePreconditionFailed)
	if e.head() != head {
		t.Fatal("a stale If-Match appended")
	}
	must(t, e.do("POST", path+"/checkout", cu, nil, "If-Match", "1"), 200)
	must(t, e.do("POST", path+"/payment-method", cu, map[string]any{"method": "card"}, "If-Match", `W/"2"`), 200)
}
