package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/relay"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// running is an App started on a real listener, with a client.
type running struct {
	t       *testing.T
	a       *App
	stopped bool
}

func testConfig(dir string) Config {
	return Config{Addr: "127.0.0.1:0", DataDir: dir, RelaxedSync: true, ShutdownTimeout: 5 * time.Second}
}

func startApp(t *testing.T, cfg Config) *running {
	t.Helper()
	a, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Shutdown(context.Background())
		t.Fatal(err)
	}
	r := &running{t: t, a: a}
	t.Cleanup(func() {
		if !r.stopped {
			a.Shutdown(context.Background())
		}
	})
	return r
}

func (r *running) stop() {
	r.t.Helper()
	r.stopped = true
	if err := r.a.Shutdown(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *running) token(role tokens.Role, sub string) string {
	r.t.Helper()
	key, err := tokens.LoadPrivateKey(r.a.DevKeyFile)
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := tokens.Mint(key, role, sub, time.Hour)
	if err != nil {
		r.t.Fatal(err)
	}
	return tok
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) field(t *testing.T, name string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("%d: %v: %s", a.status, err, a.body)
	}
	return m[name]
}

func (r *running) do(method, path, token string, body any, hdr ...string) answer {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.a.URL()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, b}
}

func (r *running) must(a answer, status int) answer {
	r.t.Helper()
	if a.status != status {
		r.t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	return a
}

func openBody(owner string) map[string]any {
	y := time.Now().Year() + 1
	return map[string]any{
		"ownerId": owner, "language": "it",
		"holder":   map[string]any{"name": "Mario Rossi", "email": "mario.rossi@example.com"},
		"services": []map[string]any{{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-03-31", y)}},
	}
}

// confirmed opens a subscription for owner and confirms an order on it, paying by bank transfer.
func (r *running) confirmed(owner string) (subID, orderID string) {
	r.t.Helper()
	subID = r.must(r.do("POST", "/v1/subscriptions", r.token(tokens.RoleOperator, "op"), openBody(owner)), 201).field(r.t, "subscriptionId").(string)
	cu := r.token(tokens.RoleCustomer, owner)
	orderID = r.must(r.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "channel": "panel"}), 201).field(r.t, "orderId").(string)
	r.must(r.do("POST", "/v1/orders/"+orderID+"/checkout", cu, nil), 200)
	r.must(r.do("POST", "/v1/orders/"+orderID+"/payment-method", cu, map[string]any{"method": "bank-transfer"}), 200)
	r.must(r.do("POST", "/v1/orders/"+orderID+"/confirm", cu, map[string]any{"acceptGeneralConditions": true,
		"approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "2026-01"}), 200)
	return subID, orderID
}

// The relay and the mailer inside orderd write the payment instructions to the outbox; when
// the payment term has passed, the sweeper expires the order, which leaves the pending list
// and frees the subscription for a new order.
func TestConfirmedOrderIsEmailedThenExpiredBySweeper(t *testing.T) {
	var ahead atomic.Int64
	cfg := testConfig(t.TempDir())
	cfg.Clock = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg.SweepInterval = 50 * time.Millisecond
	r := startApp(t, cfg)
	subID, orderID := r.confirmed("cust-sweep")

	outbox := filepath.Join(cfg.DataDir, "outbox")
	if r.a.Outbox != outbox {
		t.Fatalf("outbox %q, want %q", r.a.Outbox, outbox)
	}
	var subject string
	testwait.For(t, "an email for the order in "+outbox, func() bool {
		files, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			m, err := mail.ReadMessage(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			if strings.Contains(subject, orderID) && m.Header.Get("To") != "" {
				return true
			}
		}
		return false
	})

	fin := r.token(tokens.RoleFinance, "fin")
	pending := func() int {
		var p struct{ Orders []any }
		_ = json.Unmarshal(r.must(r.do("GET", "/v1/pending-payments", fin, nil), 200).body, &p)
		return len(p.Orders)
	}
	testwait.For(t, "the order in the pending list", func() bool { return pending() == 1 })
	// A sweep with the order in the read model the sweeper asks, run here to its end (the
	// same sweep the background sweeper runs): not due yet, it changes nothing.
	if n := command.NewSweeper(r.a.Commands, r.a.overdue, time.Hour).Sweep(context.Background()); n != 0 {
		t.Fatalf("a sweep before the term changed %d orders", n)
	}
	op := r.token(tokens.RoleOperator, "op")
	if st := r.must(r.do("GET", "/v1/orders/"+orderID, op, nil), 200).field(t, "status"); st != "confirmed" {
		t.Fatalf("expired before its term: %v", st)
	}

	ahead.Store(int64(time.Duration(domain.DefaultCatalogue().PaymentTermDays+2) * 24 * time.Hour))
	testwait.For(t, "the sweeper expires the order", func() bool {
		return r.do("GET", "/v1/orders/"+orderID, op, nil).field(t, "status") == "expired"
	})
	testwait.For(t, "the order leaves the pending list", func() bool { return pending() == 0 })
	r.must(r.do("POST", "/v1/orders", r.token(tokens.RoleCustomer, "cust-sweep"),
		map[string]any{"subscriptionId": subID, "channel": "app"}), 201)
}

// A command retried with its Idempotency-Key after a restart gets its first answer again,
// from the bucket on the same data folder; another request under the key is refused.
func TestIdempotencyKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := startApp(t, testConfig(dir))
	op := first.token(tokens.RoleOperator, "op")
	a1 := first.must(first.do("POST", "/v1/subscriptions", op, openBody("cust-idem"), "Idempotency-Key", "K-1"), 201)
	first.stop()

	second := startApp(t, testConfig(dir))
	a2 := second.must(second.do("POST", "/v1/subscriptions", op, openBody("cust-idem"), "Idempotency-Key", "K-1"), 201)
	if !bytes.Equal(a1.body, a2.body) || a2.header.Get("Idempotent-Replayed") != "true" ||
		a2.header.Get("Location") != a1.header.Get("Location") || a2.header.Get("ETag") != a1.header.Get("ETag") {
		t.Fatalf("after a restart the retry got another answer:\n%s %v\n%s %v", a1.body, a1.header, a2.body, a2.header)
	}
	second.must(second.do("POST", "/v1/subscriptions", op, openBody("cust-other"), "Idempotency-Key", "K-1"), 422)
	if n := domainCommits(t, second.a.Store); n != 1 {
		t.Fatalf("%d commits: the retry ran the command again", n)
	}
}

// --store nats://... keeps the log on that server, and the relay publishes there too.
func TestStoreOnAnExternalNATSServer(t *testing.T) {
	srv, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: t.TempDir(), Listen: "127.0.0.1:-1", RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := testConfig(t.TempDir())
	cfg.Store = srv.ClientURL()
	cfg.NoMailer = true
	r := startApp(t, cfg)
	if r.a.Embedded != nil {
		t.Fatal("an embedded server runs beside an external store")
	}
	r.confirmed("cust-ext")
	js, _ := natsjs.New(srv.Conn)
	ev, err := js.Stream(context.Background(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := ev.Info(context.Background()); info.State.Msgs < 5 {
		t.Fatalf("the external server holds %d commits", info.State.Msgs)
	}
	testwait.For(t, "OrderConfirmed published on the external server", func() bool {
		s, err := js.Stream(context.Background(), relay.DefaultStream)
		if err != nil {
			return false
		}
		_, err = s.GetLastMsgForSubject(context.Background(), relay.DefaultSubjectPrefix+".OrderConfirmed.>")
		return err == nil
	})
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "jetstream")); !os.IsNotExist(err) {
		t.Fatalf("an external store leaves no embedded store in the data folder: %v", err)
	}
	_ = nats.DefaultURL
}
