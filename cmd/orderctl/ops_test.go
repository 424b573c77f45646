package main

import (
	"bytes"
	"crypto"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

func TestKeygenWritesAPairTheAPIAccepts(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"keygen", "--out", dir}, &out, &errb); code != 0 {
		t.Fatalf("keygen exit %d: %s", code, errb.String())
	}
	priv, err := tokens.LoadPrivateKey(filepath.Join(dir, "jwt-private.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tokens.LoadPublicKey(filepath.Join(dir, "jwt-public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tokens.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Fatal("the public key is not the private key's")
	}
	out.Reset()
	if code := run([]string{"token", "--key", filepath.Join(dir, "jwt-private.pem"), "--role", "finance", "--sub", "clerk-1"}, &out, &errb); code != 0 {
		t.Fatalf("token exit %d: %s", code, errb.String())
	}
	p, err := auth.Verify(strings.TrimSpace(out.String()))
	if err != nil || p.Subject != "clerk-1" {
		t.Fatalf("token signed with the generated key: %+v, %v", p, err)
	}
	if code := run([]string{"keygen", "--out", dir}, &out, &errb); code == 0 {
		t.Fatal("keygen overwrote an existing key")
	}
}

func TestHealthFollowsTheStatus(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"health", "--url", srv.URL}, &out, &errb); code != 0 {
		t.Fatalf("healthy server: exit %d: %s", code, errb.String())
	}
	status = http.StatusServiceUnavailable
	if code := run([]string{"health", "--url", srv.URL}, &out, &errb); code == 0 {
		t.Fatal("unhealthy server: exit 0")
	}
}
