package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// allowed is the authorization contract, written out independently of the router: for
// every route, the roles that may call it ("" stands for no token at all: public).
var allowed = map[string][]tokens.Role{
	"GET /healthz":                        {"", "customer", "operator", "payments", "finance", "auditor"},
	"GET /readyz":                         {"", "customer", "operator", "payments", "finance", "auditor"},
	"GET /metrics":                        {"", "customer", "operator", "payments", "finance", "auditor"},
	"GET /v1/openapi.json":                {"", "customer", "operator", "payments", "finance", "auditor"},
	"POST /v1/subscriptions":              {"operator"},
	"GET /v1/subscriptions/{id}":          {"customer", "operator", "finance", "auditor"},
	"POST /v1/subscriptions/{id}/usage":   {"operator"},
	"POST /v1/orders":                     {"customer"},
	"GET /v1/orders/{id}":                 {"customer", "operator", "payments", "finance", "auditor"},
	"POST /v1/orders/{id}/co-termination": {"customer"},
	"POST /v1/orders/{id}/checkout":       {"customer"},
	"POST /v1/orders/{id}/payment-method": {"customer"},
	"POST /v1/orders/{id}/modify":         {"customer"},
	"POST /v1/orders/{id}/confirm":        {"customer"},
	"POST /v1/orders/{id}/cancel":         {"customer", "operator"},
	"POST /v1/orders/{id}/payments":       {"payments"},
	// Read models and audit.
	"GET /v1/subscriptions/{id}/quota":    {"customer", "operator", "finance", "auditor"},
	"GET /v1/subscriptions/{id}/expiries": {"customer", "operator", "finance", "auditor"},
	"GET /v1/expiries":                    {"operator", "finance", "auditor"},
	"GET /v1/pending-payments":            {"finance", "auditor"},
	"GET /v1/pending-payments/summary":    {"finance", "auditor"},
	"GET /v1/credits-due":                 {"finance", "auditor"},
	"GET /v1/projections":                 {"operator", "finance", "auditor"},
	"POST /v1/projections/{name}/rebuild": {"operator"},
	"GET /v1/audit/streams/{stream}":      {"auditor"},
	"GET /v1/audit/events":                {"auditor"},
	// Lists.
	"GET /v1/subscriptions": {"customer", "operator", "finance", "auditor"},
	"GET /v1/orders":        {"customer", "operator", "payments", "finance", "auditor"},
}

// Every route × every role (and no token): allowed roles get past authorization, the
// others 401 (no token) or 403; a customer on another customer's order or subscription
// gets 404.
func TestAuthorizationMatrix(t *testing.T) {
	e := start(t, nil)
	subID, orderID := e.newOrder("cust-owner", "panel")
	bodies := map[string]any{
		"POST /v1/subscriptions":              subscriptionBody("cust-new"),
		"POST /v1/subscriptions/{id}/usage":   map[string]any{"usedBytes": 1000},
		"POST /v1/orders":                     map[string]any{"subscriptionId": subID, "channel": "app"},
		"POST /v1/orders/{id}/co-termination": map[string]any{"enabled": false},
		"POST /v1/orders/{id}/payment-method": map[string]any{"method": "card"},
		"POST /v1/orders/{id}/modify":         map[string]any{"gb": 2},
		"POST /v1/orders/{id}/confirm":        confirmBody(),
		"POST /v1/orders/{id}/payments":       map[string]any{"amountCents": 1, "method": "card", "reference": "R"},
	}
	routes := e.a.API.Routes()
	if len(routes) != len(allowed) {
		t.Errorf("%d routes in the router, %d in the contract", len(routes), len(allowed))
	}
	subjects := map[tokens.Role]string{"customer": "cust-owner", "operator": "op", "payments": "gw", "finance": "fin", "auditor": "aud"}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		want, ok := allowed[key]
		if !ok {
			t.Errorf("route %s is not in the authorization contract", key)
			continue
		}
		id := orderID
		if strings.HasPrefix(rt.Path, "/v1/subscriptions/") {
			id = subID
		}
		path := strings.Replace(rt.Path, "{id}", id, 1)
		for _, role := range append([]tokens.Role{""}, tokens.Roles...) {
			tok := ""
			if role != "" {
				tok = e.token(role, subjects[role])
			}
			r := e.do(rt.Method, path, tok, bodies[key])
			name := string(role)
			if name == "" {
				name = "no token"
			}
			switch {
			case slices.Contains(want, role):
				if r.status == 401 || r.status == 403 {
					t.Errorf("%s as %s: %d, want allowed: %s", key, name, r.status, r.body)
				}
			case role == "":
				if r.status != 401 {
					t.Errorf("%s with no token: %d, want 401", key, r.status)
				}
			default:
				if r.status != 403 || r.str(t, "type") != httpapi.ProblemBase+httpapi.CodeForbidden {
					t.Errorf("%s as %s: %d, want 403: %s", key, name, r.status, r.body)
				}
			}
		}
		// A customer on someone else's resource: 404, never 403.
		if slices.Contains(want, tokens.RoleCustomer) && strings.Contains(rt.Path, "{id}") || key == "POST /v1/orders" {
			r := e.do(rt.Method, path, e.token(tokens.RoleCustomer, "cust-stranger"), bodies[key])
			code := "unknown-order"
			if strings.Contains(key, "subscriptions") || key == "POST /v1/orders" {
				code = "unknown-subscription"
			}
			if r.status != 404 || r.str(t, "type") != httpapi.ProblemBase+code {
				t.Errorf("%s as another customer: %d %s, want 404 %s", key, r.status, r.body, code)
			}
		}
	}
}

// The OpenAPI document lists every route of the router, with its roles, and no other.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := start(t, nil)
	r := must(t, e.do("GET", "/v1/openapi.json", "", nil), 200)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1", doc.OpenAPI)
	}
	inDoc := map[string][]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var roles []string
			for _, r := range op["x-roles"].([]any) {
				roles = append(roles, r.(string))
			}
			inDoc[strings.ToUpper(method)+" "+path] = roles
		}
	}
	for _, rt := range e.a.API.Routes() {
		key := rt.Method + " " + rt.Path
		roles, ok := inDoc[key]
		if !ok {
			t.Errorf("route %s is not in the OpenAPI document", key)
			continue
		}
		var want []string
		for _, r := range rt.Roles {
			want = append(want, string(r))
		}
		if !slices.Equal(roles, want) {
			t.Errorf("%s: OpenAPI x-roles %v, router %v", key, roles, want)
		}
		delete(inDoc, key)
	}
	for key := range inDoc {
		t.Errorf("the OpenAPI document lists %s, which the router does not serve", key)
	}
	if http.StatusOK != r.status {
		t.Fatal(r.status)
	}
}
