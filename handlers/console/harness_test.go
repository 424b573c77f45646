package console_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/app/apptest"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// product is the whole of orderd, in process, on a real listener and a real embedded
// JetStream store in a temporary folder.
type product struct {
	t   *testing.T
	a   *app.App
	url string
	key ed25519.PrivateKey
}

func startProduct(t *testing.T) *product {
	t.Helper()
	// A checkpoint every 5 events, so that the walkthrough's log has signed ones to show.
	cfg := apptest.Config(t.TempDir())
	cfg.CheckpointEvery = 5
	r := apptest.Start(t, cfg, nil)
	return &product{t: t, a: r.App, url: r.URL(), key: r.Key}
}

func (p *product) token(role tokens.Role, sub string) string {
	tok, err := tokens.Mint(p.key, role, sub, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// call sends one API request and decodes its JSON answer, failing on any status but want.
func (p *product) call(method, path, token string, body string, want int) map[string]any {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	var m map[string]any
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		p.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return m
}

// walk is the README walkthrough's data.
type walk struct {
	sub, order string
	total      int64
	confirmed  uint64 // the position of the confirmation
}

// walkthrough runs the README's walkthrough up to the confirmation (steps 1 to 4): the
// operator opens Rossi & Figli's subscription, the customer orders from the panel,
// switches co-termination off and on, goes to the form, changes to 2 GB, and confirms
// paying by bank transfer.
func (p *product) walkthrough() walk {
	p.t.Helper()
	op, cu := p.token(tokens.RoleOperator, "ops-1"), p.token(tokens.RoleCustomer, "cust-42")
	expires := time.Now().AddDate(0, 4, 0).Format("2006-01-02")
	sub := p.call("POST", "/v1/subscriptions", op, `{"ownerId": "cust-42",
		"holder": {"name": "Rossi & Figli S.r.l.", "email": "amministrazione@rossi.example"}, "language": "it",
		"services": [{"kind": "base", "quantity": 1, "expiresOn": "`+expires+`"},
		             {"kind": "users", "quantity": 3, "expiresOn": "`+expires+`"}]}`, 201)["subscriptionId"].(string)
	id := p.call("POST", "/v1/orders", cu, `{"subscriptionId": "`+sub+`", "gb": 1, "channel": "panel"}`, 201)["orderId"].(string)
	o := "/v1/orders/" + id
	p.call("POST", o+"/co-termination", cu, `{"enabled": false}`, 200)
	p.call("POST", o+"/co-termination", cu, `{"enabled": true}`, 200)
	p.call("POST", o+"/checkout", cu, `{}`, 200)
	p.call("POST", o+"/payment-method", cu, `{"method": "bank-transfer"}`, 200)
	p.call("POST", o+"/modify", cu, `{"gb": 2, "coTermination": true}`, 200)
	p.call("POST", o+"/checkout", cu, `{}`, 200)
	p.call("POST", o+"/payment-method", cu, `{"method": "bank-transfer"}`, 200)
	c := p.call("POST", o+"/confirm", cu, `{"acceptGeneralConditions": true, "approveUnfairTerms": true,
		"acknowledgePrivacy": true, "termsVersion": "2026-01"}`, 200)
	total := int64(c["quote"].(map[string]any)["totalCents"].(float64))
	pos := uint64(c["position"].(float64))
	// The read models have it before the pages are looked at.
	p.call("GET", fmt.Sprintf("/v1/pending-payments?after=%d", pos), p.token(tokens.RoleFinance, "clerk-7"), "", 200)
	return walk{sub: sub, order: id, total: total, confirmed: pos}
}

// pay is the walkthrough's step 6: the bank transfer is registered, and the order is paid.
func (p *product) pay(w walk) {
	p.t.Helper()
	r := p.call("POST", "/v1/orders/"+w.order+"/payments", p.token(tokens.RolePayments, "gateway"),
		fmt.Sprintf(`{"amountCents": %d, "method": "bank-transfer", "reference": "CRO-0001"}`, w.total), 200)
	p.call("GET", fmt.Sprintf("/v1/subscriptions/%s/quota?after=%d", w.sub, uint64(r["position"].(float64))),
		p.token(tokens.RoleCustomer, "cust-42"), "", 200)
}
