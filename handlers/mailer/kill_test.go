package mailer_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/mailer"
)

// TestKilledMailerProcess runs the mailer in a child process (this test binary, re-executed),
// kills it with SIGKILL while it is in the middle of an SMTP delivery, starts it again, and
// checks that every email arrived exactly once.
func TestKilledMailerProcess(t *testing.T) {
	if os.Getenv("MAILER_CHILD") != "" {
		runChildMailer(t)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	h := newHarness(t, "127.0.0.1:-1")
	const n, killAt = 12, 5
	for range n {
		h.confirm(confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodBankTransfer))
	}
	waitStream(t, h.js, n)
	h.smtp.holdAt, h.smtp.held, h.smtp.release = killAt+1, make(chan struct{}), make(chan struct{})

	child := func() *exec.Cmd {
		host, port := h.smtp.hostPort()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMailerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "MAILER_CHILD=1", "MAILER_NATS_URL="+h.emb.ClientURL(),
			"MAILER_SMTP_HOST="+host, "MAILER_SMTP_PORT="+strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := child()
	select {
	case <-h.smtp.held:
	case <-time.After(30 * time.Second):
		_ = first.Process.Kill()
		t.Fatal("the child never reached the email to be killed at")
	}
	// The child is inside email killAt+1's DATA: kill it there.
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(h.smtp.release)
	if got := len(h.smtp.messages()); got != killAt {
		t.Fatalf("%d emails before the kill, want %d", got, killAt)
	}

	second := child()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	h.smtp.waitN(t, n, 30*time.Second) // the unacknowledged ones come back after AckWait
	time.Sleep(time.Second)
	if got := onceEach(t, h.smtp.messages()); len(got) != n {
		t.Fatalf("%d distinct emails, want %d", len(got), n)
	}
	if got := h.sentLog(); got != n {
		t.Fatalf("sent-log holds %d, want %d", got, n)
	}
}

func runChildMailer(t *testing.T) {
	nc, err := nats.Connect(os.Getenv("MAILER_NATS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(os.Getenv("MAILER_SMTP_PORT"))
	sender, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: os.Getenv("MAILER_SMTP_HOST"), Port: port,
		TLS: mailer.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mailer.New(js, mailer.Config{
		Catalogue:   domain.DefaultCatalogue(),
		Sender:      sender,
		From:        "noreply@fe.example.com",
		AckWait:     2 * time.Second,
		Concurrency: 1,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Run(context.Background()) // until killed
}
