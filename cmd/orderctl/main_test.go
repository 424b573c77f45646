package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/handlers/tokens"
)

// One convention in every binary: help asked for goes to stdout and exits 0; a usage
// error is said once on stderr and exits 2; a failure exits 1.
func TestCommandLineConventions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // a part the output must hold
		stderr     string // a part stderr must hold, said once
		emptyError bool   // nothing on stderr
	}{
		{args: []string{"--help"}, code: 0, stdout: "usage: orderctl <command>", emptyError: true},
		{args: []string{"help"}, code: 0, stdout: "commands:", emptyError: true},
		{args: []string{"--version"}, code: 0, stdout: "orderctl ", emptyError: true},
		{args: nil, code: 2, stderr: "usage: orderctl <command>"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"token", "-h"}, code: 0, stdout: "usage: orderctl token", emptyError: true},
		{args: []string{"history", "--help"}, code: 0, stdout: "usage: orderctl history", emptyError: true},
		{args: []string{"token", "--bogus"}, code: 2, stderr: "flag provided but not defined: -bogus"},
		{args: []string{"token", "--data", dir, "--role", "finance", "--sub", "x", "stray"}, code: 2, stderr: `unexpected argument "stray"`},
		{args: []string{"token", "--data", dir, "--role", "finance"}, code: 2, stderr: "--role and --sub are required"},
		{args: []string{"token", "--data", dir, "--role", "finance", "--sub", "x", "--ttl", "-1h"}, code: 2, stderr: "--ttl -1h0m0s"},
		{args: []string{"token", "--data", dir, "--role", "finance", "--sub", "x", "--ttl", "9000h"}, code: 2, stderr: "at most"},
		{args: []string{"token", "--data", filepath.Join(dir, "typo"), "--role", "finance", "--sub", "x"}, code: 1, stderr: "no data folder"},
		{args: []string{"history"}, code: 2, stderr: "give one stream or id"},
		{args: []string{"replay", "--as-of", "yesterday"}, code: 2, stderr: "--as-of"},
	} {
		var out, errs bytes.Buffer
		code := run(tc.args, &out, &errs)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errs.String())
		}
		if !strings.Contains(out.String(), tc.stdout) {
			t.Errorf("%v: stdout %q lacks %q", tc.args, out.String(), tc.stdout)
		}
		if tc.stderr != "" && strings.Count(errs.String(), tc.stderr) != 1 {
			t.Errorf("%v: stderr %q should say %q once", tc.args, errs.String(), tc.stderr)
		}
		if tc.emptyError && errs.Len() > 0 {
			t.Errorf("%v: stderr %q, want nothing", tc.args, errs.String())
		}
	}
}

// The token says which key signed it, and a token from another key is refused by the
// API with words that say so rather than the library's "verification error".
func TestTokenSaysWhichKeySignedIt(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	var tokA, errsA bytes.Buffer
	if code := run([]string{"token", "--data", a, "--role", "finance", "--sub", "clerk"}, &tokA, &errsA); code != 0 {
		t.Fatalf("exit %d: %s", code, errsA.String())
	}
	if !strings.Contains(errsA.String(), "made a new development key") || !strings.Contains(errsA.String(), "signed with "+tokens.DevKeyFile(a)) {
		t.Errorf("stderr %q does not name the key", errsA.String())
	}
	if code := run([]string{"token", "--data", b, "--role", "finance", "--sub", "clerk"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatal("no key made in b")
	}
	pubB, err := tokens.LoadPublicKey(tokens.DevKeyFile(b))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tokens.NewVerifier(pubB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(strings.TrimSpace(tokA.String())); err == nil || !strings.Contains(err.Error(), "not signed by a key this server trusts") {
		t.Errorf("a token from another folder's key: %v", err)
	}
}

// orderctl reads its settings from one table, as orderd does: the store from orderd's own
// variables, the rest from ORDERCTL_<NAME>; a bad value names its variable, and a flag
// wins over the environment.
func TestSettingsComeFromTheEnvironmentToo(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ORDERD_DATA", dir)
	var out, errs bytes.Buffer
	if code := run([]string{"digest"}, &out, &errs); code != 0 || !strings.Contains(out.String(), "events=0") {
		t.Fatalf("digest of ORDERD_DATA's empty store: exit %d, %q %q", code, out.String(), errs.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatalf("the store was not opened in ORDERD_DATA: %v", err)
	}
	t.Setenv("ORDERCTL_AT", "minus one")
	out.Reset()
	errs.Reset()
	if code := run([]string{"digest"}, &out, &errs); code != 2 || !strings.Contains(errs.String(), "ORDERCTL_AT") {
		t.Fatalf("a bad ORDERCTL_AT: exit %d, %q", code, errs.String())
	}
	out.Reset()
	errs.Reset()
	if code := run([]string{"digest", "--at", "0"}, &out, &errs); code != 2 {
		// The environment is read before the flags: its bad value is refused all the same,
		// rather than hidden by a flag that happens to win today.
		t.Fatalf("a bad ORDERCTL_AT with --at: exit %d, %q", code, errs.String())
	}
}
