package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/app/apptest"
)

// `orderctl console-link` prints a link that signs in to a running orderd's console.
func TestConsoleLinkSignsIn(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, apptest.Config(dir), nil)

	var out, errs bytes.Buffer
	if code := run([]string{"console-link", "--data", dir, "--role", "auditor", "--sub", "aud-1", "--server", a.URL()}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	link := strings.TrimSpace(out.String())
	if !strings.HasPrefix(link, a.URL()+"/console/login?token=") || !strings.Contains(errs.String(), "aud-1 in as auditor") {
		t.Fatalf("link %q, stderr %q", link, errs.String())
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) == 0 || res.Cookies()[0].Name != "console_token" {
		t.Fatalf("following the link: %d %v", res.StatusCode, res.Cookies())
	}

	for _, args := range [][]string{
		{"console-link", "--data", dir, "--sub", "x", "--role", "customer"},
		{"console-link", "--data", dir, "--sub", "x", "--ttl", "-1h"},
		{"console-link", "--data", dir, "--sub", "x", "--ttl", "13h"},
		{"console-link", "--data", dir},
		{"console-link", "--data", dir, "--sub", "x", "--url", "ftp://x"},
		{"console-link", "--data", t.TempDir(), "--sub", "x"}, // no key there: none is made
	} {
		if code := run(args, io.Discard, io.Discard); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
}
