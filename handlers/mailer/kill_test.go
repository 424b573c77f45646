package mailer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	esjs "github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/emaillog"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/internal/testwait"
)

// startChild runs the mailer in a child process (this test binary, re-executed in test),
// against the harness's NATS server and SMTP server.
func startChild(t *testing.T, h *harness, test string) *exec.Cmd {
	t.Helper()
	host, port := h.smtp.hostPort()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), "MAILER_CHILD=1", "MAILER_NATS_URL="+h.emb.ClientURL(),
		"MAILER_SMTP_HOST="+host, "MAILER_SMTP_PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestKilledMailerProcess kills the mailer with SIGKILL while it is in the middle of an
// SMTP delivery (before the server accepted it), starts it again, and checks that every
// email arrived exactly once and is recorded once in the log.
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
	jstest.WaitMessages(t, h.js, notifications.DefaultStream, uint64(n))
	h.smtp.holdAt, h.smtp.held, h.smtp.release = killAt+1, make(chan struct{}), make(chan struct{})

	first := startChild(t, h, "TestKilledMailerProcess")
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

	second := startChild(t, h, "TestKilledMailerProcess")
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	h.smtp.waitN(t, n, 30*time.Second) // the unacknowledged ones come back after AckWait
	waitSentLog(t, h, n)
	if got := onceEach(t, h.smtp.messages()); len(got) != n {
		t.Fatalf("%d distinct emails, want %d", len(got), n)
	}
}

// TestHowOftenACrashAfterAcceptanceResends measures the one window left: the mail server
// has accepted an email and the mailer dies before the log records it. The mailer is
// killed with SIGKILL at random moments while it sends, against a server that takes 20 ms
// to answer DATA; each email resent must carry its first Message-ID, and the log must
// record each email once. The figure is in the README.
func TestHowOftenACrashAfterAcceptanceResends(t *testing.T) {
	if os.Getenv("MAILER_CHILD") != "" {
		runChildMailer(t)
		return
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	h := newHarness(t, "127.0.0.1:-1")
	h.smtp.delay = 20 * time.Millisecond
	if s := os.Getenv("MAILER_SMTP_DELAY"); s != "" {
		h.smtp.delay, _ = time.ParseDuration(s)
	}
	kills := 30
	if s := os.Getenv("MAILER_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	n := 10 * kills
	for range n {
		h.confirm(confirmed(t, h.cat, "Holder", "h@example.com", "it", domain.MethodBankTransfer))
	}
	jstest.WaitMessages(t, h.js, notifications.DefaultStream, uint64(n))
	for range kills {
		c := startChild(t, h, "TestHowOftenACrashAfterAcceptanceResends")
		before := len(h.smtp.messages())
		// Once the child sends; one that does not is killed all the same, and the emails
		// it did not send are counted at the end.
		testwait.Until(30*time.Second, func() bool { return len(h.smtp.messages()) > before })
		// Anywhere within the next two emails' time: a random moment is the scenario, not a
		// wait on a condition.
		time.Sleep(time.Duration(rand.IntN(60_000)) * time.Microsecond)
		if err := c.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = c.Wait()
	}
	last := startChild(t, h, "TestHowOftenACrashAfterAcceptanceResends")
	defer func() { _ = last.Process.Kill(); _ = last.Wait() }()
	testwait.CheckWithin(t, time.Minute, fmt.Sprintf("%d distinct emails", n), func() error {
		distinct := map[string]bool{}
		for _, m := range h.smtp.messages() {
			distinct[m.Header.Get("Message-Id")] = true
		}
		if len(distinct) < n {
			return fmt.Errorf("%d arrived", len(distinct))
		}
		return nil
	})
	waitSentLog(t, h, n)
	distinct := map[string]int{}
	for _, m := range h.smtp.messages() {
		distinct[m.Header.Get("Message-Id")]++
	}
	resent := len(h.smtp.messages()) - n
	if resent > kills {
		t.Fatalf("%d emails resent after %d kills of a mailer sending one at a time", resent, kills)
	}
	t.Logf("%d SIGKILLs at random moments while sending (DATA answered after %v): %d emails resent with their first Message-ID (%.0f%% of kills); %d emails, each recorded once in the log",
		kills, h.smtp.delay, resent, 100*float64(resent)/float64(kills), n)
	// The window itself: from the server's acceptance to the record in the log, for the
	// emails sent once.
	accepted := map[string]time.Time{}
	for _, m := range h.smtp.messages() {
		if distinct[m.Header.Get("Message-Id")] == 1 {
			accepted[strings.Trim(m.Header.Get("Message-Id"), "<>")] = m.At
		}
	}
	var window []time.Duration
	for _, env := range h.log() {
		var e domain.EmailSent
		if env.Type != "EmailSent" || json.Unmarshal(env.Payload, &e) != nil {
			continue
		}
		if at, ok := accepted[e.MessageID]; ok {
			window = append(window, env.RecordedAt.Sub(at))
		}
	}
	slices.Sort(window)
	if len(window) > 0 {
		t.Logf("acceptance to record: p50 %v, p99 %v (%d emails)", window[len(window)/2], window[len(window)*99/100], len(window))
	}
}

// waitSentLog waits until the log records n emails sent, and fails if it records more.
func waitSentLog(t *testing.T, h *harness, n int) {
	t.Helper()
	testwait.CheckWithin(t, 30*time.Second, fmt.Sprintf("%d emails sent in the log", n), func() error {
		got := h.sentLog()
		if got > n {
			t.Fatalf("the log records %d emails sent, want %d", got, n)
		}
		if got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// runChildMailer is the mailer as a deployment runs it: its own NATS connection and its
// own access to the event store, on the same server.
func runChildMailer(t *testing.T) {
	ctx := context.Background()
	nc, err := esjs.Connect(ctx, os.Getenv("MAILER_NATS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := esjs.Open(ctx, nc, esjs.Options{})
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
	cat := domain.DefaultCatalogue()
	m, err := mailer.New(js, mailer.Config{
		Ledger:      emaillog.New(command.New(store, command.Options{Catalogue: cat})),
		Sender:      sender,
		From:        "noreply@fe.example.com",
		AckWait:     2 * time.Second,
		Concurrency: 1,
		Logger:      zap.NewNop(),
		Now:         func() time.Time { return mailDay },
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Run(ctx) // until killed
}
