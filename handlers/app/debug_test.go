package app

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// --debug-addr serves pprof on loopback while orderd runs, and nothing after Shutdown.
func TestDebugAddrServesPprofOnLoopback(t *testing.T) {
	cfg := testConfig(filepath.Join(t.TempDir(), "data"))
	cfg.DebugAddr = "127.0.0.1:0"
	r := startApp(t, cfg)
	url := "http://" + r.a.debugAddr + "/debug/pprof/"
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("%s: %d %.200s", url, res.StatusCode, b)
	}
	r.stop()
	if res, err := http.Get(url); err == nil {
		res.Body.Close()
		t.Fatalf("pprof still served after Shutdown: %d", res.StatusCode)
	}
}

func TestDebugAddrMustBeLoopback(t *testing.T) {
	cfg := testConfig(t.TempDir())
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.1.2.3:6060", "6060"} {
		cfg.DebugAddr = addr
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--debug-addr") {
			t.Errorf("--debug-addr %q: %v", addr, err)
		}
	}
	cfg.DebugAddr = "[::1]:6060"
	if err := cfg.Validate(); err != nil {
		t.Errorf("--debug-addr [::1]:6060: %v", err)
	}
}
