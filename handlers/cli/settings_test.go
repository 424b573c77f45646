package cli

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSettingsReadTheEnvironmentThenTheFlags(t *testing.T) {
	var (
		addr  string
		n     int
		on    bool
		wait  time.Duration
		keys  []string
		token string
	)
	table := func() *Settings {
		s := NewSettings("prog", "PROG_", "[settings]")
		s.String(&addr, "addr", "127.0.0.1:1", "where")
		s.Int(&n, "workers", 4, "how many")
		s.Bool(&on, "mailer", true, "run it")
		s.Duration(&wait, "read-wait", time.Second, "how long")
		s.List(&keys, "key", "PROG_KEYS", "key files")
		s.Secret(&token, "PROG_TOKEN", "a secret")
		return s
	}
	env := map[string]string{"PROG_ADDR": "env:1", "PROG_WORKERS": "7", "PROG_KEYS": "a,b", "PROG_TOKEN": "t0k"}
	getenv := func(k string) string { return env[k] }
	var help strings.Builder
	if err := table().Parse(nil, getenv, &help); err != nil {
		t.Fatal(err)
	}
	if addr != "env:1" || n != 7 || !on || wait != time.Second || !slices.Equal(keys, []string{"a", "b"}) || token != "t0k" {
		t.Fatalf("from the environment: %q %d %v %s %v %q", addr, n, on, wait, keys, token)
	}
	err := table().Parse([]string{"--addr", "flag:2", "--mailer", "false", "--key", "c", "--key=d,e", "--read-wait=5s"}, getenv, &help)
	if err != nil || addr != "flag:2" || on || wait != 5*time.Second || !slices.Equal(keys, []string{"c", "d", "e"}) {
		t.Fatalf("flags win: %v %q %v %s %v", err, addr, on, wait, keys)
	}
	for _, args := range [][]string{{"--token", "x"}, {"--workers", "many"}, {"stray"}, {"--addr"}} {
		var ue UsageError
		if err := table().Parse(args, getenv, &help); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if err := table().Parse([]string{"--workers", "many"}, getenv, &help); !strings.Contains(err.Error(), "PROG_WORKERS") {
		t.Errorf("a bad flag's error names its variable: %v", err)
	}
	env["PROG_WORKERS"] = "lots"
	if err := table().Parse(nil, getenv, &help); err == nil || !strings.Contains(err.Error(), "PROG_WORKERS") {
		t.Errorf("a bad variable: %v", err)
	}
	env["PROG_WORKERS"] = "7"
	help.Reset()
	if err := table().Parse([]string{"-h"}, getenv, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, line := range []string{"--addr, PROG_ADDR", "--key, PROG_KEYS", "PROG_TOKEN", "(default 127.0.0.1:1)", "--version"} {
		if !strings.Contains(help.String(), line) {
			t.Errorf("help lacks %q:\n%s", line, help.String())
		}
	}
}

// A command with positional arguments (orderctl's "history <id>") takes them after the
// settings; a setting shared with another binary keeps that binary's variable; Given says
// what the command line set.
func TestSettingsWithArgumentsSharedVariablesAndGiven(t *testing.T) {
	var (
		data, out string
		at        uint64
	)
	table := func() *Settings {
		s := NewSettings("tool history", "TOOL_", "[settings] <id>")
		s.About("Prints a history.")
		s.StringAs(&data, "data", "SERVER_DATA", "./data", "data folder")
		s.String(&out, "out", "-", "file")
		s.Uint64(&at, "at", 0, "position")
		return s
	}
	env := map[string]string{"SERVER_DATA": "/srv"}
	getenv := func(k string) string { return env[k] }
	s := table()
	args, err := s.ParseArgs([]string{"--at", "42", "order-1"}, getenv, io.Discard, 1)
	if err != nil || !slices.Equal(args, []string{"order-1"}) || data != "/srv" || at != 42 || out != "-" {
		t.Fatalf("ParseArgs: %v %v %q %d %q", err, args, data, at, out)
	}
	if s.Given("data") || !s.Given("at") || s.Given("out") {
		t.Errorf("Given: data %v at %v out %v", s.Given("data"), s.Given("at"), s.Given("out"))
	}
	var ue UsageError
	if _, err := table().ParseArgs([]string{"a", "b"}, getenv, io.Discard, 1); !errors.As(err, &ue) {
		t.Errorf("two arguments where one is taken: %v", err)
	}
	if _, err := table().ParseArgs([]string{"--at", "-1"}, getenv, io.Discard, 1); !errors.As(err, &ue) || !strings.Contains(err.Error(), "TOOL_AT") {
		t.Errorf("a negative position: %v", err)
	}
	var help strings.Builder
	if _, err := table().ParseArgs([]string{"--help"}, getenv, &help, 1); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, line := range []string{"usage: tool history [settings] <id>", "Prints a history.", "--data, SERVER_DATA", "--out, TOOL_OUT"} {
		if !strings.Contains(help.String(), line) {
			t.Errorf("help lacks %q:\n%s", line, help.String())
		}
	}
}
