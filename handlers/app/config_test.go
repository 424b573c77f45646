package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	} {
		if _, err := ParseConfig(tc.args, tc.env, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
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
