package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/app/apptest"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// env is the whole product, in process, on a real listener and a real embedded JetStream
// store in a temporary folder.
type env struct {
	t   *testing.T
	a   *app.App
	url string
	key ed25519.PrivateKey
	hc  *http.Client
}

func start(t *testing.T, log *zap.Logger) *env {
	t.Helper()
	return startWith(t, log, nil)
}

// startWith starts the product with settings changed by tune (nil: the test defaults).
func startWith(t *testing.T, log *zap.Logger, tune func(*app.Config)) *env {
	t.Helper()
	// No mailer: these tests count the log's events and its head, and a mailer appending
	// EmailSent in the background would move them (the mailer has tests of its own).
	cfg := apptest.Config(t.TempDir())
	cfg.NoMailer = true
	if tune != nil {
		tune(&cfg)
	}
	r := apptest.Start(t, cfg, log)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, a: r.App, url: r.URL(), key: r.Key, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (e *env) token(role tokens.Role, sub string) string {
	tok, err := tokens.Mint(e.key, role, sub, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer %d is not JSON: %v: %s", r.status, err, r.body)
	}
	return m
}

func (r resp) str(t *testing.T, field string) string {
	t.Helper()
	s, _ := r.json(t)[field].(string)
	return s
}

// problemType is the problem's type, checking the media type too.
func (r resp) problemType(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want a problem: %s", r.status, ct, r.body)
	}
	return r.str(t, "type")
}

// do sends a request. body may be nil, a []byte or string (sent as is), or a value (JSON).
// hdr holds header name/value pairs; the Content-Type is application/json unless given.
func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	var sent []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		sent = b
	case string:
		sent = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		sent = j
	}
	if body != nil {
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	if err := documented(e.t, method, path, sent, r); err != nil {
		e.t.Errorf("SCHEMA %v", err)
	}
	return r
}

// must checks the status of an answer.
func must(t *testing.T, r resp, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func wantProblem(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.status, status, code, r.body)
	}
	if got := r.problemType(t); got != httpapi.ProblemBase+code {
		t.Fatalf("problem type %q, want %q: %s", got, httpapi.ProblemBase+code, r.body)
	}
}

func subscriptionBody(owner string) map[string]any {
	year := time.Now().Year() + 1
	return map[string]any{
		"ownerId":  owner,
		"holder":   map[string]any{"name": "Mario Rossi", "email": "mario.rossi@example.com"},
		"language": "it",
		"services": []map[string]any{
			{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-03-31", year)},
			{"kind": "users", "quantity": 2, "expiresOn": fmt.Sprintf("%d-01-31", year)},
			{"kind": "conservation", "quantity": 1, "expiresOn": fmt.Sprintf("%d-02-28", year)},
		},
	}
}

// openSubscription opens a subscription for owner as an operator and returns its id.
func (e *env) openSubscription(owner string) string {
	e.t.Helper()
	r := must(e.t, e.do("POST", "/v1/subscriptions", e.token(tokens.RoleOperator, "op-1"), subscriptionBody(owner)), http.StatusCreated)
	return r.str(e.t, "subscriptionId")
}

// newOrder opens a subscription for owner and a cart on it, returning both ids.
func (e *env) newOrder(owner, channel string) (subID, orderID string) {
	e.t.Helper()
	subID = e.openSubscription(owner)
	r := must(e.t, e.do("POST", "/v1/orders", e.token(tokens.RoleCustomer, owner),
		map[string]any{"subscriptionId": subID, "gb": 1, "channel": channel}), http.StatusCreated)
	return subID, r.str(e.t, "orderId")
}

// confirmedOrder walks a new order to confirmation and returns its ids and total.
func (e *env) confirmedOrder(owner string) (subID, orderID string, total int64) {
	e.t.Helper()
	subID, orderID = e.newOrder(owner, "panel")
	cu := e.token(tokens.RoleCustomer, owner)
	must(e.t, e.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil), 200)
	must(e.t, e.do("POST", "/v1/orders/"+orderID+"/payment-method", cu, map[string]any{"method": "card"}), 200)
	r := must(e.t, e.do("POST", "/v1/orders/"+orderID+"/confirm", cu, confirmBody()), 200)
	return subID, orderID, int64(r.json(e.t)["quote"].(map[string]any)["totalCents"].(float64))
}

func confirmBody() map[string]any {
	return map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}
}

// events reads a stream straight from the store.
func (e *env) events(category, id string) []eventstore.Envelope {
	e.t.Helper()
	envs, err := e.a.Store.ReadStream(context.Background(), eventstore.StreamName(category, uuid.MustParse(id)), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return envs
}

func countTypes(envs []eventstore.Envelope, typ string) int {
	n := 0
	for _, env := range envs {
		if env.Type == typ {
			n++
		}
	}
	return n
}

func (e *env) head() uint64 {
	e.t.Helper()
	h, err := e.a.Store.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

var _ = domain.StatusPaid
