package main

import (
	"bytes"
	"context"
	"flag"
	"io"
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
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/relay"

	esjs "github.com/einvoice/spaceorders/eventstore/jetstream"
)

func TestConfigErrorsNameTheSetting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-smtp-port", "x"}, "-smtp-port (MAILER_SMTP_PORT)"},
		{[]string{"-concurrency", "0"}, "-concurrency (MAILER_CONCURRENCY)"},
		{[]string{"-attempts", "many"}, "-attempts (MAILER_ATTEMPTS)"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := parse(fs, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %s", c.args, err, c.want)
		}
	}
	err := run([]string{"-smtp-host", "h", "-smtp-tls", "bogus"})
	if err == nil || !strings.Contains(err.Error(), "MAILER_SMTP_") || !strings.Contains(err.Error(), "TLS mode") {
		t.Errorf("bad TLS mode: %v", err)
	}
	err = run([]string{"-catalogue", filepath.Join(t.TempDir(), "missing.json")})
	if err == nil || !strings.Contains(err.Error(), "-catalogue (MAILER_CATALOGUE)") {
		t.Errorf("missing catalogue: %v", err)
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
	if err := deadLetters([]string{"-nats", emb.ClientURL()}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("without credentials: %v, want an authorization error", err)
	}
	if err := deadLetters([]string{"-nats", emb.ClientURL(), "-nats-user", "mailer"}); err == nil || !strings.Contains(err.Error(), "MAILER_NATS_PASSWORD") {
		t.Fatalf("a user without a password: %v", err)
	}
	t.Setenv("MAILER_NATS_PASSWORD", "pw-of-the-mailer")
	outbox := t.TempDir()
	done := make(chan error, 1)
	go func() { done <- run([]string{"-nats", emb.ClientURL(), "-nats-user", "mailer", "-outbox", outbox}) }()
	// The mailer starts before the relay, and waits for its stream.
	time.Sleep(200 * time.Millisecond)
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
		Recipient: domain.Recipient{Name: "Mario", Email: "mario@example.it", Language: "it"}}, eventstore.Metadata{})
	if _, err := store.Append(ctx, eventstore.StreamName("order", order), eventstore.NoStream, ev); err != nil {
		t.Fatal(err)
	}
	eml := filepath.Join(outbox, id.String()+".eml")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, err := os.ReadFile(eml); err == nil {
			if !bytes.Contains(b, []byte("mario@example.it")) {
				t.Fatalf("eml:\n%s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no .eml in the outbox")
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	if err := deadLetters([]string{"-nats", emb.ClientURL(), "-nats-user", "mailer"}); err != nil {
		t.Fatal(err)
	}
}
