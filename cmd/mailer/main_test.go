package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/cli"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/relay"

	esjs "github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func TestConfigErrorsNameTheSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-port", "x"}, "MAILER_SMTP_PORT"},
		{[]string{"--concurrency", "0"}, "--concurrency (MAILER_CONCURRENCY)"},
		{[]string{"--attempts", "many"}, "MAILER_ATTEMPTS"},
		{[]string{"--nats-replicas", "0"}, "--nats-replicas (MAILER_NATS_REPLICAS)"},
		{[]string{"--store", "/var/lib/data"}, "--store (MAILER_STORE)"},
		{[]string{"--outbox", "x", "stray"}, `"stray"`},
		{[]string{"-nats", "nats://x"}, "-nats"}, // orderd's name is --nats-url: so is the mailer's
	} {
		_, err := parse(c.args, func(string) string { return "" })
		var ue cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
	err := run([]string{"--smtp-host", "h", "--smtp-tls", "bogus"})
	if err == nil || !strings.Contains(err.Error(), "MAILER_SMTP_") || !strings.Contains(err.Error(), "TLS mode") {
		t.Errorf("bad TLS mode: %v", err)
	}
	err = run([]string{"--catalogue", filepath.Join(t.TempDir(), "missing.json")})
	if err == nil || !strings.Contains(err.Error(), "--catalogue (MAILER_CATALOGUE)") {
		t.Errorf("missing catalogue: %v", err)
	}
}

// The same convention as every binary: help exits 0, a usage error exits 2 said once, and
// the settings that orderd has too have orderd's names.
func TestCommandLineConventions(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
	}{
		{nil, 0}, {flag.ErrHelp, 0}, {cli.UsageError{Err: errors.New("x")}, 2}, {errors.New("smtp down"), 1},
	} {
		var stderr strings.Builder
		if got := exitCode(c.err, &stderr); got != c.code || strings.Count(stderr.String(), "mailer:") > 1 {
			t.Errorf("%v: exit %d (%q), want %d", c.err, got, stderr.String(), c.code)
		}
	}
	if err := run([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	if err := deadLetters([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("deadletters -h: %v", err)
	}
	var cfg config
	s := settings(&cfg)
	for _, name := range []string{"nats-url", "nats-user", "nats-nkey-seed", "store", "store-prefix", "smtp-host",
		"smtp-port", "smtp-tls", "smtp-user", "mail-from", "catalogue"} {
		if s.Env(name) == "" {
			t.Errorf("the mailer has no --%s, which orderd has", name)
		}
	}
}

// The command against a listening embedded server that admits one user (as orderd's does
// beyond loopback): refused without the credentials; with them it writes to the outbox,
// stops on SIGTERM, and lists dead letters.
func TestRunWritesOutboxAndStopsOnSignal(t *testing.T) {
	emb, err := esjs.StartEmbedded(esjs.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true,
		Users: []esjs.User{{Name: "mailer", Password: "pw-of-the-mailer"}}, ConnectOptions: []nats.Option{nats.UserInfo("mailer", "pw-of-the-mailer")}})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if err := deadLetters([]string{"--nats-url", emb.ClientURL()}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("without credentials: %v, want an authorization error", err)
	}
	if err := deadLetters([]string{"--nats-url", emb.ClientURL(), "--nats-user", "mailer"}); err == nil || !strings.Contains(err.Error(), "MAILER_NATS_PASSWORD") {
		t.Fatalf("a user without a password: %v", err)
	}
	t.Setenv("MAILER_NATS_PASSWORD", "pw-of-the-mailer")
	outbox := t.TempDir()
	done := make(chan error, 1)
	clients := emb.Server.NumClients()
	go func() {
		done <- run([]string{"--nats-url", emb.ClientURL(), "--nats-user", "mailer", "--outbox", outbox})
	}()
	// The mailer starts before the relay (connected, it waits for the relay's stream).
	testwait.For(t, "the mailer's connection", func() bool { return emb.Server.NumClients() > clients })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := esjs.Open(ctx, emb.Conn, esjs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(emb.Conn)
	go func() { _ = relay.New(store, js, relay.Options{}).Run(ctx) }()
	cat := domain.DefaultCatalogue()
	q, _ := cat.Quote(nil, 1, true, domain.Date{Year: 2026, Month: 3, Day: 10})
	order, id := uuid.New(), uuid.New()
	ev, _ := eventstore.DomainCodec().Encode(id, domain.OrderConfirmed{OrderID: order, Quote: q, PaymentMethod: "card",
		Recipient: domain.Recipient{Name: "Mario", Email: "mario@example.it", Language: "it"},
		PayBy:     domain.DateOf(time.Now()).AddDays(30)}, eventstore.Metadata{})
	if _, err := store.Append(ctx, eventstore.StreamName("order", order), eventstore.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(outbox, order.String()+"-instructions.eml")
	var b []byte
	testwait.Check(t, "the .eml in the outbox", func() (err error) { b, err = os.ReadFile(eml); return err })
	if !bytes.Contains(b, []byte("mario@example.it")) {
		t.Fatalf("eml:\n%s", b)
	}
	// The email is a fact in the order's history, written by the mailer through -store.
	testwait.Check(t, "EmailSent in the order's history", func() error {
		envs, err := store.ReadStream(ctx, eventstore.StreamName("order", order), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) != 2 || envs[1].Type != "EmailSent" {
			return fmt.Errorf("%d events", len(envs))
		}
		return nil
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stop on SIGTERM")
	}
	var buf bytes.Buffer
	if err := PrintDeadLetters(&buf, []mailer.DeadLetter{{Seq: 1, EventID: "e1", Type: "OrderConfirmed", Attempts: 8, Error: "451"}}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "e1") || !strings.Contains(buf.String(), "1 dead letter(s)") {
		t.Fatalf("table:\n%s", buf.String())
	}
	if err := deadLetters([]string{"--nats-url", emb.ClientURL(), "--nats-user", "mailer"}); err != nil {
		t.Fatal(err)
	}
}
