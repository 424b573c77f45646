package app

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/cli"
)

func TestConfigNamesTheWrongSetting(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := ParseConfig(nil, env(), io.Discard)
	if err != nil || c.Addr != DefaultAddr || c.DataDir != DefaultDataDir || c.RelaxedSync {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = ParseConfig([]string{"--addr", "127.0.0.1:9", "--data", "/x"}, env("ORDERD_ADDR", "127.0.0.1:7", "ORDERD_DATA", "/y"), io.Discard)
	if err != nil || c.Addr != "127.0.0.1:9" || c.DataDir != "/x" {
		t.Fatalf("flags over environment: %+v %v", c, err)
	}
	c, _ = ParseConfig(nil, env("ORDERD_ADDR", "[::1]:7", "ORDERD_DATA", "/y", "ORDERD_RELAXED_SYNC", "true"), io.Discard)
	if c.Addr != "[::1]:7" || c.DataDir != "/y" || !c.RelaxedSync {
		t.Fatalf("environment: %+v", c)
	}
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{[]string{"--addr", "nonsense"}, env(), "--addr"},
		{[]string{"--addr", "127.0.0.1:99999"}, env(), "--addr"},
		{nil, env("ORDERD_ADDR", "0.0.0.0:8080"), "beyond loopback"},
		{[]string{"--addr", ":8080"}, env(), "beyond loopback"},
		{[]string{"--data", ""}, env(), "--data"},
		{nil, env("ORDERD_RELAXED_SYNC", "maybe"), "ORDERD_RELAXED_SYNC"},
		{nil, env("ORDERD_SHUTDOWN_TIMEOUT", "soon"), "ORDERD_SHUTDOWN_TIMEOUT"},
		{[]string{"--nats-listen", "x"}, env(), "--nats-listen"},
		{[]string{"--store", "ftp://x"}, env(), "--store"},
		{nil, env("ORDERD_STORE", "localhost:4222"), "--store (ORDERD_STORE)"},
		{[]string{"--nats-url", "http://x"}, env(), "--nats-url"},
		{[]string{"--store", "nats://h:4222", "--nats-listen", "127.0.0.1:4222"}, env(), "--nats-listen"},
		{[]string{"--smtp-tls", "ssl"}, env(), "--smtp-tls"},
		{nil, env("ORDERD_SMTP_PORT", "smtp"), "ORDERD_SMTP_PORT"},
		{[]string{"--smtp-port", "70000"}, env(), "--smtp-port"},
		{[]string{"--nats-replicas", "3"}, env(), "--nats-replicas (ORDERD_NATS_REPLICAS) 3: the embedded NATS server is one server"},
		{[]string{"--store", "nats://h:4222", "--nats-replicas", "6"}, env(), "--nats-replicas"},
		{nil, env("ORDERD_STORE", "nats://h:4222", "ORDERD_NATS_REPLICAS", "-1"), "ORDERD_NATS_REPLICAS"},
		{[]string{"--lease-ttl", "100ms"}, env(), "--lease-ttl"},
		{nil, env("ORDERD_MAILER", "sometimes"), "ORDERD_MAILER"},
		{[]string{"--sweep-interval", "-1s"}, env(), "--sweep-interval"},
		{nil, env("ORDERD_SWEEP_INTERVAL", "often"), "ORDERD_SWEEP_INTERVAL"},
		{nil, env("ORDERD_READ_WAIT", "a bit"), "ORDERD_READ_WAIT"},
		{[]string{"--read-wait", "-3s"}, env(), "--read-wait"},
	} {
		if _, err := ParseConfig(tc.args, tc.env, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
	c, err = ParseConfig(nil, env(), io.Discard)
	if err != nil || c.NoMailer || c.Store != "" || c.SMTPTLS != "starttls" || c.SweepInterval != time.Minute ||
		c.ReadWait != 3*time.Second || c.MailFrom != DefaultMailFrom {
		t.Fatalf("defaults of the new settings: %+v %v", c, err)
	}
	c, err = ParseConfig([]string{"--mailer=false", "--store", "esdb://k:2113?tls=false", "--smtp-user", "u", "--smtp-port", "2525"},
		env("ORDERD_SMTP_PASSWORD", "secret", "ORDERD_SMTP_HOST", "mail", "ORDERD_NATS_URL", "nats://n:4222", "ORDERD_MAIL_FROM", "a@b.it"), io.Discard)
	if err != nil || !c.NoMailer || c.Store != "esdb://k:2113?tls=false" || c.SMTPUser != "u" || c.SMTPPassword != "secret" ||
		c.SMTPHost != "mail" || c.SMTPPort != 2525 || c.NATSURL != "nats://n:4222" || c.MailFrom != "a@b.it" {
		t.Fatalf("settings: %+v %v", c, err)
	}
	if k, _ := c.StoreKind(); k != StoreKurrent {
		t.Fatalf("esdb:// is KurrentDB, not %s", k)
	}
	// Settings only New can check: a store that does not answer, a sender that is no address.
	for _, tc := range []struct {
		tune func(*Config)
		want string
	}{
		{func(c *Config) { c.Store = "nats://127.0.0.1:1" }, "--store (ORDERD_STORE)"},
		{func(c *Config) { c.NATSURL = "nats://127.0.0.1:1" }, "--nats-url (ORDERD_NATS_URL)"},
		{func(c *Config) { c.MailFrom = "not an address" }, "--mail-from (ORDERD_MAIL_FROM)"},
	} {
		c := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), RelaxedSync: true, ShutdownTimeout: time.Second}
		tc.tune(&c)
		a, err := New(context.Background(), c, nil)
		if err == nil {
			a.Shutdown(context.Background())
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", c, err, tc.want)
		}
	}
	// With a key configured, any interface will do; a missing key file stops the start.
	c, err = ParseConfig([]string{"--addr", "0.0.0.0:8080", "--jwt-public-key", "/nonexistent.pem"}, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.DataDir = t.TempDir()
	if _, err := New(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "--jwt-public-key") {
		t.Fatalf("missing key file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "catalogue.json")
	os.WriteFile(bad, []byte(`{"vatPercent":"x"}`), 0o644)
	c = Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), CatalogueFile: bad, ShutdownTimeout: 1}
	if _, err := New(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "--catalogue") {
		t.Fatalf("bad catalogue: %v", err)
	}
}

func TestCORSOriginsSetting(t *testing.T) {
	env := map[string]string{"ORDERD_CORS_ORIGINS": "https://panel.example.com, https://area.example.com"}
	c, err := ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://area.example.com" {
		t.Fatalf("from the environment: %v, %v", c.CORSOrigins, err)
	}
	c, err = ParseConfig([]string{"--cors-origins", "http://localhost:5173"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil || len(c.CORSOrigins) != 1 || c.CORSOrigins[0] != "http://localhost:5173" {
		t.Fatalf("a flag wins: %v, %v", c.CORSOrigins, err)
	}
	for _, bad := range []string{"panel.example.com", "https://panel.example.com/app", "ftp://x", "*"} {
		_, err := ParseConfig([]string{"--cors-origins", bad}, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--cors-origins (ORDERD_CORS_ORIGINS)") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// One convention for every setting: --name value, --name=value and, for a switch,
// --name false all work; help is on stdout; a stray word is a usage error; a flag list
// replaces the environment's.
func TestSettingsFollowOneConvention(t *testing.T) {
	none := func(string) string { return "" }
	c, err := ParseConfig([]string{"--mailer", "false", "--relaxed-sync"}, none, io.Discard)
	if err != nil || !c.NoMailer || !c.RelaxedSync {
		t.Fatalf("--mailer false --relaxed-sync: %+v %v", c, err)
	}
	var ue cli.UsageError
	if _, err := ParseConfig([]string{"--data", "/x", "stray"}, none, io.Discard); !errors.As(err, &ue) || !strings.Contains(err.Error(), `"stray"`) {
		t.Fatalf("a stray argument: %v", err)
	}
	if _, err := ParseConfig([]string{"--nope"}, none, io.Discard); !errors.As(err, &ue) {
		t.Fatalf("an unknown flag: %v", err)
	}
	var help strings.Builder
	if _, err := ParseConfig([]string{"--help"}, none, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	env := func(k string) string {
		if k == "ORDERD_JWT_PUBLIC_KEYS" {
			return "/env/a.pem,/env/b.pem"
		}
		return ""
	}
	c, _ = ParseConfig(nil, env, io.Discard)
	if !slices.Equal(c.JWTPublicKeys, []string{"/env/a.pem", "/env/b.pem"}) {
		t.Fatalf("keys from the environment: %v", c.JWTPublicKeys)
	}
	c, _ = ParseConfig([]string{"--jwt-public-key", "/f/1.pem", "--jwt-public-key", "/f/2.pem"}, env, io.Discard)
	if !slices.Equal(c.JWTPublicKeys, []string{"/f/1.pem", "/f/2.pem"}) {
		t.Fatalf("keys from flags over the environment: %v", c.JWTPublicKeys)
	}

	// The help and the README's configuration table list every setting, flag and variable.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	for _, name := range settings(&cfg).Names() {
		env := settings(&cfg).Env(name)
		if !strings.Contains(help.String(), "--"+name+", "+env) {
			t.Errorf("--help lacks --%s, %s", name, env)
		}
		if !strings.Contains(string(readme), "| `--"+name+"` | `"+env+"` |") {
			t.Errorf("the README's configuration table lacks --%s (%s)", name, env)
		}
	}
}
