package httpapi_test

// The OpenAPI document is hand-written; these tests hold the server to it. Its schemas
// (JSON Schema 2020-12, as OpenAPI 3.1 has them) are checked with
// github.com/santhosh-tekuri/jsonschema/v6: a complete implementation of the draft, with no
// dependencies of its own, kept up to date with the JSON Schema test suite; writing a
// validator here would test our reading of the draft rather than the document.

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

const docURL = "https://spaceorders.example/openapi.json"

// contract is the OpenAPI document, ready to check requests and answers against.
type contract struct {
	doc   map[string]any
	paths []pathPattern

	mu       sync.Mutex // the compiler is not for concurrent use; tests send concurrently
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema // compiled, by location
}

type pathPattern struct {
	path string
	re   *regexp.Regexp
}

// loadContract reads the served document. Answers are held to it strictly: an object
// schema that lists its properties admits no other (the document may leave clients room to
// grow, but a field the server sends and the document does not name is a gap in it).
func loadContract(t *testing.T, strict bool) *contract {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(httpapi.OpenAPI()))
	if err != nil {
		t.Fatal(err)
	}
	m := doc.(map[string]any)
	if strict {
		closeObjects(m["components"])
		closeObjects(m["paths"])
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, m); err != nil {
		t.Fatal(err)
	}
	ct := &contract{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}}
	for p := range m["paths"].(map[string]any) {
		re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), `[^/]+`) + "$"
		ct.paths = append(ct.paths, pathPattern{p, regexp.MustCompile(re)})
	}
	// A literal path wins over a pattern (/v1/pending-payments/summary, not {id}).
	slices.SortFunc(ct.paths, func(a, b pathPattern) int { return strings.Count(a.path, "{") - strings.Count(b.path, "{") })
	return ct
}

// closeObjects sets additionalProperties to false on every schema that lists properties
// and leaves it open.
func closeObjects(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["properties"]; ok {
			if ap, set := x["additionalProperties"]; !set || ap == true {
				x["additionalProperties"] = false
			}
		}
		for _, e := range x {
			closeObjects(e)
		}
	case []any:
		for _, e := range x {
			closeObjects(e)
		}
	}
}

func pointer(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
	}
	return docURL + "#/" + strings.Join(parts, "/")
}

// operation finds the documented path and operation of a request.
func (c *contract) operation(method, urlPath string) (string, map[string]any, error) {
	urlPath, _, _ = strings.Cut(urlPath, "?")
	for _, p := range c.paths {
		if !p.re.MatchString(urlPath) {
			continue
		}
		op, ok := c.doc["paths"].(map[string]any)[p.path].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("%s %s: the document has no %s on %s", method, urlPath, method, p.path)
		}
		return p.path, op, nil
	}
	return "", nil, fmt.Errorf("%s %s: no path of the document matches", method, urlPath)
}

func (c *contract) validate(loc string, body []byte) error {
	c.mu.Lock()
	sch, ok := c.schemas[loc]
	if !ok {
		var err error
		if sch, err = c.compiler.Compile(loc); err != nil {
			c.mu.Unlock()
			return fmt.Errorf("compile %s: %w", loc, err)
		}
		c.schemas[loc] = sch
	}
	c.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(v)
}

// request checks a request body against the operation's request schema.
func (c *contract) request(method, urlPath string, body []byte) error {
	path, op, err := c.operation(method, urlPath)
	if err != nil {
		return err
	}
	if _, ok := op["requestBody"]; !ok {
		if len(body) > 0 {
			return fmt.Errorf("%s %s: a body, and the document describes none", method, path)
		}
		return nil
	}
	if len(body) == 0 {
		body = []byte("{}") // the walkthrough's post() sends {} for no body
	}
	if err := c.validate(pointer("paths", path, strings.ToLower(method), "requestBody", "content", "application/json", "schema"), body); err != nil {
		return fmt.Errorf("request %s %s: %w", method, path, err)
	}
	return nil
}

// answer checks that the status and media type are documented for the operation, and a
// JSON answer against the schema of that status and media type.
func (c *contract) answer(method, urlPath string, r resp) error {
	path, op, err := c.operation(method, urlPath)
	if err != nil {
		return err
	}
	status := strconv.Itoa(r.status)
	doc, ok := op["responses"].(map[string]any)[status].(map[string]any)
	if !ok {
		return fmt.Errorf("%s %s answered %s, which the document does not list", method, path, status)
	}
	content, _ := doc["content"].(map[string]any)
	if content == nil {
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s %s %s: Content-Type %q: %v", method, path, status, r.header.Get("Content-Type"), err)
	}
	if _, ok := content[mt]; !ok {
		return fmt.Errorf("%s %s %s: media type %s is not documented", method, path, status, mt)
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return nil
	}
	if _, ok := content[mt].(map[string]any)["schema"]; !ok {
		return fmt.Errorf("%s %s %s: the document gives %s no schema", method, path, status, mt)
	}
	if err := c.validate(pointer("paths", path, strings.ToLower(method), "responses", status, "content", mt, "schema"), r.body); err != nil {
		return fmt.Errorf("answer %d to %s %s: %w\n%s", r.status, method, path, err, r.body)
	}
	return nil
}

// checked is a request sent and its answer, both checked against the contract: the body
// even when the server refuses it (env.do checks every answer, and the bodies it accepts).
// A request to a command route runs the command the route is named by, once: the handler
// counts it under that name.
func (c *contract) checked(t *testing.T, e *env, method, path, token string, body string, hdr ...string) resp {
	t.Helper()
	if err := c.request(method, path, []byte(body)); err != nil {
		t.Error(err)
	}
	var b any
	if body != "" {
		b = body
	}
	if method != "POST" {
		return e.do(method, path, token, b, hdr...)
	}
	pattern, _, err := c.operation(method, path)
	if err != nil {
		t.Fatal(err)
	}
	routes := e.a.API.Routes()
	i := slices.IndexFunc(routes, func(rt httpapi.Route) bool { return rt.Method == method && rt.Path == pattern })
	if i < 0 {
		t.Fatalf("no route serves %s %s", method, pattern)
	}
	name, before := routes[i].Name, commandsRun(t, e)
	r := e.do(method, path, token, b, hdr...)
	if ran := commandsRun(t, e)[name] - before[name]; ran != 1 {
		t.Errorf("%s %s (route %s) ran %s %v times, want once", method, path, pattern, name, ran)
	}
	return r
}

// Every route's name is the document's operationId for it, and every command route is
// named by its command (the server names them with CommandName): read from the router, with
// no table to keep, so that a new route is checked as it is added. That a command route's
// name is the command it runs is checked by TestWalkthroughBodiesMatchTheSchemas, from the
// handler's own metrics.
func TestRoutesAreNamedAsTheDocumentsOperations(t *testing.T) {
	e := start(t, nil)
	c := loadContract(t, false)
	commands := 0
	for _, rt := range e.a.API.Routes() {
		_, op, err := c.operation(rt.Method, rt.Path)
		if err != nil {
			t.Error(err)
			continue
		}
		if op["operationId"] != rt.Name {
			t.Errorf("%s %s: operationId %v, route name %q", rt.Method, rt.Path, op["operationId"], rt.Name)
		}
		if rt.Method == "POST" && rt.Name != "RebuildProjection" { // a read model's, not a domain command
			commands++
		}
	}
	if commands < 10 {
		t.Errorf("%d command routes, want the 10 of the contract at least", commands)
	}
	// The names the server gives its command routes are the commands' own.
	for path, cmd := range map[string]domain.Command{
		"/v1/orders": domain.RequestSpaceIncrease{}, "/v1/orders/{id}/confirm": domain.ConfirmOrder{},
		"/v1/subscriptions/{id}/usage": domain.ReportUsage{},
	} {
		i := slices.IndexFunc(e.a.API.Routes(), func(rt httpapi.Route) bool { return rt.Method == "POST" && rt.Path == path })
		if i < 0 || e.a.API.Routes()[i].Name != cmd.CommandName() {
			t.Errorf("POST %s is not named %s", path, cmd.CommandName())
		}
	}
}

// commandsRun is how many times the handler has run each command, from /metrics.
func commandsRun(t *testing.T, e *env) map[string]float64 {
	t.Helper()
	n := map[string]float64{}
	re := regexp.MustCompile(`(?m)^orders_commands_total\{command="(\w+)",outcome="\w+"\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(string(must(t, e.do("GET", "/metrics", "", nil), 200).body), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		n[m[1]] += v
	}
	return n
}

// The README's walkthrough, request by request, with more of the answers a client meets
// on the way (refusals, lists, audit), each request body and answer checked against the
// schemas of the document, held strictly: no field the document does not name.
func TestWalkthroughBodiesMatchTheSchemas(t *testing.T) {
	e := start(t, nil)
	c := loadContract(t, true)
	op, cu, pay, fin, aud := e.token(tokens.RoleOperator, "ops-1"), e.token(tokens.RoleCustomer, "cust-42"),
		e.token(tokens.RolePayments, "gateway"), e.token(tokens.RoleFinance, "clerk-7"), e.token(tokens.RoleAuditor, "aud-1")
	expires := domain.DateOf(time.Now()).AddMonths(4).String()

	// 1. An operator opens the subscription.
	r := must(t, c.checked(t, e, "POST", "/v1/subscriptions", op, `{
	  "ownerId": "cust-42",
	  "holder": {"name": "Rossi & Figli S.r.l.", "email": "amministrazione@rossi.example"},
	  "language": "it",
	  "services": [{"kind": "base", "quantity": 1, "expiresOn": "`+expires+`"},
	               {"kind": "users", "quantity": 3, "expiresOn": "`+expires+`"}]}`), http.StatusCreated)
	sub := r.str(t, "subscriptionId")
	must(t, c.checked(t, e, "POST", "/v1/subscriptions/"+sub+"/usage", op, `{"usedBytes": 734003200}`), 200)

	// 2. The cart.
	r = must(t, c.checked(t, e, "POST", "/v1/orders", cu, `{"subscriptionId": "`+sub+`", "gb": 1, "channel": "panel"}`), http.StatusCreated)
	id := r.str(t, "orderId")
	o := "/v1/orders/" + id
	// A second cart on the same subscription is refused: a problem, as documented.
	wantProblem(t, c.checked(t, e, "POST", "/v1/orders", cu, `{"subscriptionId": "`+sub+`", "channel": "app"}`), 409, "order-in-progress")

	// 3. Co-termination off and on.
	must(t, c.checked(t, e, "POST", o+"/co-termination", cu, `{"enabled": false}`), 200)
	must(t, c.checked(t, e, "POST", o+"/co-termination", cu, `{"enabled": true}`), 200)

	// 4. The order form, a change of mind, the form again, confirm.
	must(t, c.checked(t, e, "POST", o+"/checkout", cu, ""), 200)
	must(t, c.checked(t, e, "POST", o+"/payment-method", cu, `{"method": "bank-transfer"}`), 200)
	must(t, c.checked(t, e, "POST", o+"/modify", cu, `{"gb": 2, "coTermination": true}`), 200)
	must(t, c.checked(t, e, "POST", o+"/checkout", cu, ""), 200)
	must(t, c.checked(t, e, "POST", o+"/payment-method", cu, `{"method": "bank-transfer"}`), 200)
	wantProblem(t, c.checked(t, e, "POST", o+"/confirm", cu, `{"acceptGeneralConditions": true,
	  "approveUnfairTerms": false, "acknowledgePrivacy": true, "termsVersion": "2026-01"}`), 422, "unfair-terms-not-approved")
	r = must(t, c.checked(t, e, "POST", o+"/confirm", cu, `{"acceptGeneralConditions": true,
	  "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}`), 200)
	confirmed := int64(r.json(t)["position"].(float64))
	r = must(t, c.checked(t, e, "GET", o, cu, ""), 200)
	total := int64(r.json(t)["quote"].(map[string]any)["totalCents"].(float64))

	// 5. Finance: pending payments, as JSON and CSV, and the summary.
	must(t, c.checked(t, e, "GET", fmt.Sprintf("/v1/pending-payments?after=%d", confirmed), fin, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/pending-payments", fin, "", "Accept", "text/csv"), 200)
	must(t, c.checked(t, e, "GET", "/v1/pending-payments/summary", fin, ""), 200)

	// 6. The payment (too much: the excess is a credit due), the order paid, the space granted.
	r = must(t, c.checked(t, e, "POST", o+"/payments", pay,
		fmt.Sprintf(`{"amountCents": %d, "method": "bank-transfer", "reference": "CRO-0001"}`, total+100)), 200)
	paid := int64(r.json(t)["position"].(float64))
	must(t, c.checked(t, e, "GET", o, cu, ""), 200)
	must(t, c.checked(t, e, "GET", fmt.Sprintf("/v1/subscriptions/%s/quota?after=%d", sub, paid), cu, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/subscriptions/"+sub+"/expiries", cu, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/subscriptions/"+sub, cu, ""), 200)
	wantProblem(t, c.checked(t, e, "POST", o+"/cancel", cu, `{"reason": "too late"}`), 409, "order-already-paid")

	// The lists and the rest of the read side.
	must(t, c.checked(t, e, "GET", "/v1/subscriptions?ownerId=cust-42", op, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/orders?subscriptionId="+sub, cu, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/expiries?within=365d", fin, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/credits-due", fin, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/projections", op, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/audit/streams/order-"+id, aud, ""), 200)
	must(t, c.checked(t, e, "GET", "/v1/audit/events?after=0", aud, ""), 200)
	wantProblem(t, c.checked(t, e, "GET", "/v1/orders/"+sub, cu, ""), 404, "unknown-order")
	// A request the schema refuses is refused by the server too, with a documented problem.
	bad := `{"subscriptionId": "` + sub + `", "gb": 1, "channel": "fax"}`
	if c.request("POST", "/v1/orders", []byte(bad)) == nil {
		t.Error("the schema admits the channel fax")
	}
	wantProblem(t, e.do("POST", "/v1/orders", cu, bad), 422, "invalid-channel")
	must(t, c.checked(t, e, "GET", "/healthz", "", ""), 200)
	must(t, c.checked(t, e, "GET", "/readyz", "", ""), 200)
}

// The checks above can fail: a body that breaks the schemas is refused by them.
func TestSchemasRefuseWhatTheDocumentDoesNotAllow(t *testing.T) {
	c := loadContract(t, true)
	ok := resp{status: 201, header: http.Header{"Content-Type": {"application/json"}}}
	for _, bad := range []struct {
		what, want string
		err        error
	}{
		{"request: unknown field", "additional properties", c.request("POST", "/v1/orders", []byte(`{"subscriptionId": "0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60", "channel": "app", "colour": "red"}`))},
		{"request: channel out of the enum", "must be one of", c.request("POST", "/v1/orders", []byte(`{"subscriptionId": "0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60", "channel": "fax"}`))},
		{"request: not a uuid", "uuid", c.request("POST", "/v1/orders", []byte(`{"subscriptionId": "42", "channel": "app"}`))},
		{"answer: required field missing", "missing propert", c.answer("POST", "/v1/orders", withBody(ok, `{"orderId": "0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60"}`))},
		{"answer: a field the document does not name", "additional properties", c.answer("GET", "/healthz", resp{status: 200,
			header: http.Header{"Content-Type": {"application/json"}}, body: []byte(`{"status": "ok", "mood": "good"}`)})},
		{"answer: a field OrderView does not name", "additional properties", c.answer("GET", "/v1/orders/0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60", withBody(resp{status: 200,
			header: http.Header{"Content-Type": {"application/json"}}}, `{"orderId": "0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60",
			"subscriptionId": "0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60", "status": "cart", "quote": {}, "paymentMethod": "",
			"paidCents": 0, "version": 0, "discount": 5}`))},
		{"answer: undocumented status", "does not list", c.answer("GET", "/healthz", resp{status: 418})},
		{"answer: undocumented media type", "not documented", c.answer("POST", "/v1/orders", resp{status: 201, header: http.Header{"Content-Type": {"text/plain"}}})},
		{"no such path", "no path", c.request("POST", "/v1/nowhere", nil)},
	} {
		if bad.err == nil || !strings.Contains(bad.err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error saying %q", bad.what, bad.err, bad.want)
		}
	}
}

func withBody(r resp, body string) resp {
	r.body = []byte(body)
	return r
}

var (
	sharedContract     *contract
	sharedContractOnce sync.Once
)

// documented checks an answer any test of the package receives against the document,
// and the request's body when the server accepted it, when the request is one of the
// document's operations (a path it does not serve is another test's point: a 404 or 405
// of the router). A refused request may break the schema: refusing it is the point.
func documented(t *testing.T, method, path string, body []byte, r resp) error {
	sharedContractOnce.Do(func() { sharedContract = loadContract(t, true) })
	if _, _, err := sharedContract.operation(method, path); err != nil {
		return nil
	}
	if r.status < 300 {
		if err := sharedContract.request(method, path, body); err != nil {
			return err
		}
	}
	return sharedContract.answer(method, path, r)
}
