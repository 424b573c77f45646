package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// browserless is a client that keeps cookies and does not follow redirects, to see each
// answer as it is.
func browserless(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func post(t *testing.T, hc *http.Client, u string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func signIn(t *testing.T, p *product, hc *http.Client, token string) *http.Response {
	t.Helper()
	res, _ := post(t, hc, p.url+"/console/login", url.Values{"token": {token}})
	return res
}

// The token cookie is HttpOnly, SameSite=Strict and scoped to the console; a customer's
// or a payments token is refused and gets no cookie.
func TestSignInKeepsTheTokenInAStrictCookie(t *testing.T) {
	p := startProduct(t)
	hc := browserless(t)

	res, body := get(t, hc, p.url+"/console/pending")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) {
		t.Fatalf("a page before signing in: %d\n%s", res.StatusCode, body)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("Content-Security-Policy %q", csp)
	}

	for _, role := range []tokens.Role{tokens.RoleCustomer, tokens.RolePayments} {
		res := signIn(t, p, hc, p.token(role, "someone"))
		if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 {
			t.Fatalf("%s token: %d, cookies %v", role, res.StatusCode, res.Cookies())
		}
	}
	if res := signIn(t, p, hc, "not.a.token"); res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
		t.Fatalf("a bad token: %d, cookies %v", res.StatusCode, res.Cookies())
	}

	res = signIn(t, p, hc, p.token(tokens.RoleFinance, "clerk-7"))
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("finance sign-in: %d", res.StatusCode)
	}
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "console_token" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" {
		t.Fatalf("cookie %+v", ck)
	}
	if res, _ := get(t, hc, p.url+"/console/pending"); res.StatusCode != http.StatusOK {
		t.Fatalf("pending after signing in: %d", res.StatusCode)
	}
	// The cookie is the console's: the API still wants a bearer token.
	req, _ := http.NewRequest("GET", p.url+"/v1/pending-payments", nil)
	req.AddCookie(ck)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API with the console's cookie: %v %v", res.StatusCode, err)
	}

	// Signing out forgets the cookie.
	post(t, hc, p.url+"/console/logout", nil)
	if res, _ := get(t, hc, p.url+"/console/pending"); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pending after signing out: %d", res.StatusCode)
	}
}

// A short-lived link (orderctl console-link) signs in and drops the token from the address.
func TestSignInLink(t *testing.T) {
	p := startProduct(t)
	hc := browserless(t)
	res, _ := get(t, hc, p.url+"/console/login?token="+url.QueryEscape(p.token(tokens.RoleAuditor, "aud-1")))
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/" || res.Header.Get("Referrer-Policy") == "" {
		t.Fatalf("link: %d %v", res.StatusCode, res.Header)
	}
	if res, _ := get(t, hc, p.url+"/console/"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/pending" {
		t.Fatalf("home: %d %v", res.StatusCode, res.Header)
	}
}

// Rebuild is an operator's, from the console's own page; the others see the models only.
func TestRebuildFromTheConsole(t *testing.T) {
	p := startProduct(t)
	p.walkthrough()
	fin, op := browserless(t), browserless(t)
	signIn(t, p, fin, p.token(tokens.RoleFinance, "clerk-7"))
	signIn(t, p, op, p.token(tokens.RoleOperator, "ops-1"))

	res, body := get(t, fin, p.url+"/console/models")
	if res.StatusCode != 200 || strings.Contains(body, "/rebuild") || !strings.Contains(body, "pending-payment") {
		t.Fatalf("finance's models page: %d\n%s", res.StatusCode, body)
	}
	if res, _ := post(t, fin, p.url+"/console/models/lists/rebuild", nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("finance rebuilding: %d", res.StatusCode)
	}
	if res, _ := post(t, op, p.url+"/console/models/lists/rebuild", nil, "Origin", "https://evil.example"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site rebuild: %d", res.StatusCode)
	}
	if res, _ := post(t, op, p.url+"/console/models/lists/rebuild", nil, "Sec-Fetch-Site", "cross-site"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site rebuild: %d", res.StatusCode)
	}
	if res, _ := post(t, op, p.url+"/console/models/nope/rebuild", nil, "Origin", p.url); res.StatusCode != http.StatusNotFound {
		t.Fatalf("rebuilding an unknown model: %d", res.StatusCode)
	}
	res, _ = post(t, op, p.url+"/console/models/lists/rebuild", nil, "Origin", p.url)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/models?rebuilt=lists" {
		t.Fatalf("an operator's rebuild: %d %v", res.StatusCode, res.Header)
	}
	if _, body := get(t, op, p.url+"/console/models?rebuilt=lists"); !strings.Contains(body, `id="rebuilt"`) {
		t.Fatalf("after the rebuild:\n%s", body)
	}
	// An operator has no business with the pending payments.
	if res, _ := get(t, op, p.url+"/console/pending"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("an operator on pending: %d", res.StatusCode)
	}
}

// The pages speak Italian when asked, and remember it.
func TestItalian(t *testing.T) {
	p := startProduct(t)
	hc := browserless(t)
	signIn(t, p, hc, p.token(tokens.RoleFinance, "clerk-7"))
	_, body := get(t, hc, p.url+"/console/pending?lang=it")
	if !strings.Contains(body, `<html lang="it">`) || !strings.Contains(body, "Pagamenti in attesa") {
		t.Fatalf("Italian page:\n%s", body)
	}
	_, body = get(t, hc, p.url+"/console/log")
	if !strings.Contains(body, "Verifica il registro") {
		t.Fatalf("the language was not kept:\n%s", body)
	}
	_, body = get(t, browserless(t), p.url+"/console/", "Accept-Language", "it-IT,it;q=0.9,en;q=0.5")
	if !strings.Contains(body, "Accedi") {
		t.Fatalf("Accept-Language it:\n%s", body)
	}
}

// The pages over plain HTTP: the pending filters and their CSV, an unknown timeline, and
// the log checked against a digest recorded earlier (right and wrong).
func TestPagesFiltersAndVerification(t *testing.T) {
	p := startProduct(t)
	w := p.walkthrough()
	hc := browserless(t)
	signIn(t, p, hc, p.token(tokens.RoleAuditor, "aud-1"))

	_, body := get(t, hc, p.url+"/console/pending?method=bank-transfer")
	if !strings.Contains(body, w.order) || !strings.Contains(body, `<option value="bank-transfer" selected>`) {
		t.Fatalf("filtered by bank transfer:\n%s", body)
	}
	for _, q := range []string{"method=card", "minAgeDays=3"} {
		// The page itself, saying it has nothing to list (not an error page without the table).
		if res, body := get(t, hc, p.url+"/console/pending?"+q); res.StatusCode != 200 || strings.Contains(body, `id="pending-orders"`) ||
			!strings.Contains(body, `id="orders-h"`) || !strings.Contains(body, "Nothing here.") && !strings.Contains(body, "Nessun elemento.") {
			t.Fatalf("%s still lists the order, or is no pending page (%d):\n%s", q, res.StatusCode, body)
		}
		if _, csv := get(t, hc, p.url+"/console/pending.csv?"+q); strings.Contains(csv, w.order) || !strings.HasPrefix(csv, "order_id,") {
			t.Fatalf("%s CSV:\n%s", q, csv)
		}
	}
	res, csv := get(t, hc, p.url+"/console/pending.csv?method=bank-transfer")
	if !strings.Contains(csv, w.order) || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV %v:\n%s", res.Header, csv)
	}
	if _, body := get(t, hc, p.url+"/console/pending?minAgeDays=soon"); !strings.Contains(body, `role="alert"`) {
		t.Fatalf("a bad filter is not named:\n%s", body)
	}

	if res, body := get(t, hc, p.url+"/console/timeline?id=00000000-0000-4000-8000-000000000000"); res.StatusCode != http.StatusNotFound ||
		!strings.Contains(body, "No order or subscription has that id") {
		t.Fatalf("an unknown id: %d\n%s", res.StatusCode, body)
	}

	// The signer follows the log: wait until it has signed the walkthrough's events.
	testwait.For(t, "a signed checkpoint listed on /console/log", func() bool {
		_, body := get(t, hc, p.url+"/console/log")
		return strings.Contains(body, `id="checkpoint-list"`)
	})
	_, body = get(t, hc, p.url+"/console/log?verify=1")
	i := strings.Index(body, `<code id="digest">`)
	if i < 0 || !strings.Contains(body, "Intact") || !regexp.MustCompile(`id="signed-verdict">[^<]*: [1-9]`).MatchString(body) {
		t.Fatalf("verification with the signed checkpoints:\n%s", body)
	}
	digest := body[i+len(`<code id="digest">`) : i+len(`<code id="digest">`)+64]
	head := p.a.Store
	h, _ := head.Head(t.Context())
	at := strconv.FormatUint(h, 10)
	if _, body := get(t, hc, p.url+"/console/log?verify=1&expectDigest="+digest+"&at="+at); !strings.Contains(body, "The recorded digest matches") {
		t.Fatalf("the right digest:\n%s", body)
	}
	wrong := strings.Repeat("0", 64)
	if _, body := get(t, hc, p.url+"/console/log?verify=1&expectDigest="+wrong+"&at="+at); !strings.Contains(body, "TAMPERED") {
		t.Fatalf("a wrong digest:\n%s", body)
	}
}

// Money received beyond what an order takes is owed back: the pending page lists it among
// the credits due, with the holder and the total.
func TestPendingPageListsCreditsDue(t *testing.T) {
	p := startProduct(t)
	w := p.walkthrough()
	r := p.call("POST", "/v1/orders/"+w.order+"/payments", p.token(tokens.RolePayments, "gateway"),
		fmt.Sprintf(`{"amountCents": %d, "method": "bank-transfer", "reference": "CRO-0002"}`, w.total+1234), 200)
	p.call("GET", fmt.Sprintf("/v1/credits-due?after=%d", uint64(r["position"].(float64))), p.token(tokens.RoleFinance, "clerk-7"), "", 200)
	hc := browserless(t)
	signIn(t, p, hc, p.token(tokens.RoleFinance, "clerk-7"))
	_, body := get(t, hc, p.url+"/console/pending")
	i := strings.Index(body, `id="credits-due"`)
	if i < 0 || !strings.Contains(body[i:], w.order) || !strings.Contains(body[i:], "Rossi &amp; Figli") {
		t.Fatalf("no credit due for %s:\n%s", w.order, body)
	}
	if j := strings.Index(body, `id="credits-total"`); j < 0 || !strings.Contains(body[j:j+40], "€12.34") {
		t.Fatalf("credits total:\n%s", body[max(j, 0):])
	}
}
