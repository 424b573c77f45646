package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// `orderctl token --data DIR --role R --sub S` prints a token that the data folder's key
// verifies, with that role and subject: scripts and tests outside the code rely on it.
func TestTokenIsSignedWithTheDataFolderKey(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	if code := run([]string{"token", "--data", dir, "--role", "payments", "--sub", "gateway-1"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	key, err := tokens.LoadPublicKey(tokens.DevKeyFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tokens.NewVerifier(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := auth.Verify(strings.TrimSpace(out.String()))
	if err != nil || p.Role != tokens.RolePayments || p.Subject != "gateway-1" {
		t.Fatalf("token gives %+v, %v", p, err)
	}
	for _, args := range [][]string{
		{"token", "--data", dir, "--role", "root", "--sub", "x"},
		{"token", "--data", dir, "--sub", "x"},
		{"token", "--data", dir, "--role", "customer"},
	} {
		if code := run(args, io.Discard, io.Discard); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
}
