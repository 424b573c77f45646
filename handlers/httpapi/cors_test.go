package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

func corsHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			out = append(out, k)
		}
	}
	return out
}

func TestCORSForConfiguredOrigins(t *testing.T) {
	const panel = "https://panel.example.com"
	e := startWith(t, nil, func(c *app.Config) { c.CORSOrigins = []string{panel, "http://localhost:5173"} })
	_, orderID := e.newOrder("cust-1", "panel")

	// A browser's preflight of a command with its headers.
	r := e.do("OPTIONS", "/v1/orders/"+orderID+"/confirm", "", nil, "Origin", panel,
		"Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type, idempotency-key, if-match")
	h := r.header
	if r.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != panel {
		t.Fatalf("preflight: %d %v", r.status, h)
	}
	for _, want := range []string{"Authorization", "Content-Type", "Idempotency-Key", "If-Match"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") == "" ||
		h.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Fatalf("preflight headers %v", h)
	}

	// The request itself: readable, with ETag and Location exposed.
	r = e.do("GET", "/v1/orders/"+orderID, e.token(tokens.RoleCustomer, "cust-1"), nil, "Origin", "http://LOCALHOST:5173")
	must(t, r, 200)
	if r.header.Get("Access-Control-Allow-Origin") != "http://LOCALHOST:5173" {
		t.Fatalf("answer headers %v", r.header)
	}
	for _, want := range []string{"ETag", "Location", "Link", httpapi.HeaderNextCursor} {
		if !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), want) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", r.header.Get("Access-Control-Expose-Headers"), want)
		}
	}

	// Another origin gets no CORS header at all, on the preflight or the request.
	r = e.do("OPTIONS", "/v1/orders", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := corsHeaders(r.header); len(got) != 0 || r.status == http.StatusNoContent {
		t.Fatalf("a foreign origin's preflight: %d %v", r.status, got)
	}
	r = e.do("GET", "/healthz", "", nil, "Origin", "https://panel.example.com.evil.example")
	if got := corsHeaders(r.header); len(got) != 0 {
		t.Fatalf("a foreign origin's request: %v", got)
	}
}

func TestNoCORSByDefault(t *testing.T) {
	e := start(t, nil)
	r := e.do("OPTIONS", "/v1/orders", "", nil, "Origin", "https://panel.example.com", "Access-Control-Request-Method", "POST")
	if got := corsHeaders(r.header); len(got) != 0 || r.status != http.StatusMethodNotAllowed {
		t.Fatalf("with no origins configured: %d %v", r.status, got)
	}
}
