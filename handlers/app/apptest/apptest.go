// Package apptest starts the whole product in a test, as orderd runs it: the App on a
// random loopback port, its data in a folder of the test's, the development signing key
// made there. Tests of the HTTP API, the console and orderctl share it.
package apptest

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// Config is a test's configuration: a random port, the folder dir, no fsync of every
// append (tests do not cut the power), a short shutdown.
func Config(dir string) app.Config {
	return app.Config{Addr: "127.0.0.1:0", DataDir: dir, RelaxedSync: true, ShutdownTimeout: 5 * time.Second}
}

// Running is a started App and the key its tokens are signed with.
type Running struct {
	*app.App
	Key     ed25519.PrivateKey
	t       testing.TB
	stopped bool
}

// Start builds and starts the App of cfg, logging to log (nil: nowhere). It is stopped at
// the end of the test, or before by Stop.
func Start(t testing.TB, cfg app.Config, log *zap.Logger) *Running {
	t.Helper()
	a, err := app.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		_ = a.Shutdown(context.Background())
		t.Fatal(err)
	}
	r := &Running{App: a, t: t}
	t.Cleanup(r.Stop)
	if r.Key, err = tokens.LoadPrivateKey(a.DevKeyFile); err != nil {
		t.Fatal(err)
	}
	return r
}

// Stop shuts the App down, once (the folder holds one server at a time: a test that
// restarts stops the first before starting the second).
func (r *Running) Stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	if err := r.Shutdown(context.Background()); err != nil {
		r.t.Error(err)
	}
}

// Token is a token of role for sub, valid for an hour, signed with the App's key.
func (r *Running) Token(role tokens.Role, sub string) string {
	r.t.Helper()
	tok, err := tokens.Mint(r.Key, role, sub, time.Hour)
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}
