package app

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// An embedded NATS reachable beyond loopback holds the whole event log: orderd will not
// open one without credentials.
func TestNATSBeyondLoopbackNeedsCredentials(t *testing.T) {
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
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string // "": accepted
	}{
		{[]string{"--nats-listen", "0.0.0.0:4222"}, env(), "no NATS credentials"},
		{[]string{"--nats-listen", ":4222"}, env(), "no NATS credentials"},
		{nil, env("ORDERD_NATS_LISTEN", "192.0.2.7:4222"), "no NATS credentials"},
		{[]string{"--nats-listen", "0.0.0.0:4222", "--nats-user", "orderd"}, env(), "ORDERD_NATS_PASSWORD"},
		{nil, env("ORDERD_NATS_PASSWORD", "secret"), "--nats-user"},
		{[]string{"--nats-listen", "127.0.0.1:4222"}, env(), ""},
		{[]string{"--nats-listen", "0.0.0.0:4222", "--nats-user", "orderd"}, env("ORDERD_NATS_PASSWORD", "secret"), ""},
		{nil, env("ORDERD_NATS_LISTEN", "0.0.0.0:4222", "ORDERD_NATS_NKEY_SEED", "/some/seed.nk"), ""},
	} {
		c, err := ParseConfig(tc.args, tc.env, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), "--nats-"):
			t.Errorf("%v: error %v names no setting", tc.args, err)
		}
		if tc.want == "" && c.NATSPassword != "" && c.NATSPassword != "secret" {
			t.Errorf("password %q", c.NATSPassword)
		}
	}
	// New checks too: a Config literal does not get past it.
	cfg := testConfig(t.TempDir())
	cfg.NATSListen = "0.0.0.0:0"
	if a, err := New(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "no NATS credentials") {
		if a != nil {
			a.close()
		}
		t.Fatalf("New with an open NATS beyond loopback: %v", err)
	}
}

// listenURL is a loopback URL of the embedded server listening on every interface.
func listenURL(t *testing.T, a *App) string {
	t.Helper()
	addr, ok := a.Embedded.Server.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("the embedded server does not listen: %v", a.Embedded.Server.Addr())
	}
	return "nats://127.0.0.1:" + strconv.Itoa(addr.Port)
}

func connectTo(url string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, opts...)...)
}

// canReadTheLog: a connection that got in may list the streams, the event log among them.
func canReadTheLog(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, "EVENTS"); err != nil {
		t.Fatalf("an admitted client cannot see the event log: %v", err)
	}
}

// On every interface with a user and password: a client without them (or with a wrong
// password) is refused, one with them gets in; orderd's own connections use them.
func TestNATSOnEveryInterfaceAdmitsOnlyItsUser(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.NATSListen = "0.0.0.0:-1"
	cfg.NATSUser, cfg.NATSPassword = "orderd", "s3cret-enough"
	r := startApp(t, cfg)
	url := listenURL(t, r.a)

	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("orderd", "wrong")}, {nats.UserInfo("someone", "s3cret-enough")}} {
		nc, err := connectTo(url, opts...)
		if err == nil {
			nc.Close()
			t.Fatalf("a client with %d option(s) got in without the credentials", len(opts))
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("refused, but not for authorization: %v", err)
		}
	}
	nc, err := connectTo(url, nats.UserInfo("orderd", "s3cret-enough"))
	if err != nil {
		t.Fatalf("with the credentials: %v", err)
	}
	defer nc.Close()
	canReadTheLog(t, nc)
	// As orderctl --store passes them: in the URL.
	inURL, err := connectTo(strings.Replace(url, "nats://", "nats://orderd:s3cret-enough@", 1))
	if err != nil {
		t.Fatalf("credentials in the URL: %v", err)
	}
	inURL.Close()
	// orderd's in-process connection is admitted as the same user: commands work.
	r.must(r.do("POST", "/v1/subscriptions", r.token(tokens.RoleOperator, "op"), openBody("cust-nats-auth")), 201)
}

// With an nkey seed: the server admits its public key only, proved by a signature.
func TestNATSOnEveryInterfaceAdmitsTheNKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "orderd.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.NATSListen = "0.0.0.0:-1"
	cfg.NATSNKeySeed = seedFile
	r := startApp(t, cfg)
	url := listenURL(t, r.a)

	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	os.WriteFile(otherFile, otherSeed, 0o600)
	otherOpt, err := nats.NkeyOptionFromSeed(otherFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]nats.Option{nil, {otherOpt}} {
		if nc, err := connectTo(url, opts...); err == nil {
			nc.Close()
			t.Fatalf("a client with %d option(s) got in without the nkey", len(opts))
		}
	}
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connectTo(url, opt)
	if err != nil {
		t.Fatalf("with the nkey: %v", err)
	}
	defer nc.Close()
	canReadTheLog(t, nc)
	r.must(r.do("POST", "/v1/subscriptions", r.token(tokens.RoleOperator, "op"), openBody("cust-nkey")), 201)

	bad := testConfig(t.TempDir())
	bad.NATSNKeySeed = filepath.Join(t.TempDir(), "missing.nk")
	if a, err := New(context.Background(), bad, nil); err == nil || !strings.Contains(err.Error(), "--nats-nkey-seed") {
		if a != nil {
			a.close()
		}
		t.Fatalf("a missing seed file: %v", err)
	}
}
