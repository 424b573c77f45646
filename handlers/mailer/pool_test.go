package mailer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/mailer"
)

func testEmail(i int) mailer.Email {
	return mailer.Email{
		ID: fmt.Sprintf("e-%d", i), MessageID: fmt.Sprintf("e-%d@fe.example.com", i),
		From: "Fatturazione Elettronica <noreply@fe.example.com>", ToName: "Mario Rossi",
		To: "mario@example.it", Subject: fmt.Sprintf("email %d", i),
		Text: "testo", HTML: "<p>testo</p>", Date: mailDay,
	}
}

func sender(t *testing.T, s *smtpServer, cfg mailer.SMTPConfig) *mailer.SMTPSender {
	t.Helper()
	cfg.Host, cfg.Port = s.hostPort()
	cfg.TLS, cfg.Timeout = mailer.TLSNone, 2*time.Second
	snd, err := mailer.NewSMTPSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = snd.Close() })
	return snd
}

// Emails one after another go over one connection: a connection per email cost a TCP
// handshake, EHLO (and, for real servers, TLS and AUTH) before each.
func TestSMTPSenderKeepsItsConnection(t *testing.T) {
	srv := startSMTP(t)
	snd := sender(t, srv, mailer.SMTPConfig{})
	for i := range 10 {
		if err := snd.Send(context.Background(), testEmail(i)); err != nil {
			t.Fatal(err)
		}
	}
	onceEach(t, srv.waitN(t, 10, 5*time.Second))
	if n := srv.connections(); n != 1 {
		t.Fatalf("%d connections for 10 emails, want 1", n)
	}
}

// The mailer's workers send at once, each on its own connection, and the connections are
// kept for the next emails: no more than one per worker.
func TestSMTPSenderServesConcurrentWorkers(t *testing.T) {
	srv := startSMTP(t)
	snd := sender(t, srv, mailer.SMTPConfig{MaxIdle: 4})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 15 {
				if err := snd.Send(context.Background(), testEmail(100*w+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	onceEach(t, srv.waitN(t, 60, 5*time.Second))
	if n := srv.connections(); n > 4 {
		t.Fatalf("%d connections for 4 workers, want at most 4", n)
	}
}

// A kept connection that the server has closed meanwhile (a restart, an idle timeout) costs
// the email nothing: it goes out on a new connection, once.
func TestSMTPSenderReconnectsWhenItsConnectionDied(t *testing.T) {
	srv := startSMTP(t)
	snd := sender(t, srv, mailer.SMTPConfig{})
	if err := snd.Send(context.Background(), testEmail(1)); err != nil {
		t.Fatal(err)
	}
	addr := srv.addr
	if err := srv.srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := startSMTPAt(t, addr)
	if err := snd.Send(context.Background(), testEmail(2)); err != nil {
		t.Fatalf("send after the server's restart: %v", err)
	}
	got := onceEach(t, srv2.waitN(t, 1, 5*time.Second))
	if _, ok := got["<e-2@fe.example.com>"]; !ok || len(got) != 1 {
		t.Fatalf("the restarted server got %v", got)
	}
}

// A refusal is reported, and the next email goes out all the same.
func TestSMTPSenderAfterARefusal(t *testing.T) {
	srv := startSMTP(t)
	snd := sender(t, srv, mailer.SMTPConfig{})
	if err := snd.Send(context.Background(), testEmail(1)); err != nil {
		t.Fatal(err)
	}
	srv.setReject(true)
	if err := snd.Send(context.Background(), testEmail(2)); err == nil {
		t.Fatal("an email the server refused was reported sent")
	}
	srv.setReject(false)
	if err := snd.Send(context.Background(), testEmail(3)); err != nil {
		t.Fatal(err)
	}
	got := onceEach(t, srv.waitN(t, 2, 5*time.Second))
	if _, ok := got["<e-2@fe.example.com>"]; ok || len(got) != 2 {
		t.Fatalf("the server kept %d emails (e-2 among them: %v)", len(got), ok)
	}
}

// A connection idle for longer than IdleTimeout is not reused.
func TestSMTPSenderDropsIdleConnections(t *testing.T) {
	srv := startSMTP(t)
	snd := sender(t, srv, mailer.SMTPConfig{IdleTimeout: time.Nanosecond})
	for i := range 3 {
		if err := snd.Send(context.Background(), testEmail(i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.waitN(t, 3, 5*time.Second)
	if n := srv.connections(); n != 3 {
		t.Fatalf("%d connections, want 3 (none reused past its idle timeout)", n)
	}
}
