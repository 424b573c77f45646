package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS lets the frontends (the panel, the customer area, the app's web views) call the API
// from their own origins. Only origins configured exactly are allowed; any other gets no
// CORS header at all, so its browser refuses the answer. Tokens travel in Authorization,
// never in cookies, so credentials are not allowed.
const (
	corsMethods = "GET, POST"
	corsHeaders = "Authorization, Content-Type, Idempotency-Key, If-Match, Accept, " + HeaderCorrelationID
	corsExposed = "ETag, Location, Link, Retry-After, Content-Disposition, " + HeaderNextCursor + ", " +
		HeaderCorrelationID + ", " + HeaderRequestID
	// corsMaxAge is how long a browser may keep a preflight's answer, in seconds.
	corsMaxAge = "600"
)

// ParseOrigin checks a configured CORS origin: scheme://host[:port], nothing else.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin such as https://panel.example.com", s)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// cors answers preflights of the allowed origins and marks their answers readable.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		// The answer depends on the Origin: a shared cache must not give one origin's to another.
		h.Add("Vary", "Origin")
		if !slices.Contains(origins, strings.ToLower(origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposed)
		next.ServeHTTP(w, r)
	})
}
