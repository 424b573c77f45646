package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

type instant struct {
	at      string
	digests map[string]string
	json    map[string][]byte
}

// orderdStandin answers an auditor as orderd does: GET /v1/projections with the models'
// status and the real audit endpoints, both behind the data folder's key and the auditor role.
func orderdStandin(t *testing.T, dir string, store eventstore.Store, status func() []projections.ModelStatus) *httptest.Server {
	t.Helper()
	_, _, err := tokens.LoadOrCreateKey(tokens.DevKeyFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	key, err := tokens.LoadPrivateKey(tokens.DevKeyFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := tokens.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	audit.NewAPI(store, nil).Register(mux)
	mux.HandleFunc("GET /v1/projections", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"models": status()})
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Verify(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil || p.Role != tokens.RoleAuditor {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestReplayAndVerifyCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	opened, err := open.Open(ctx, open.Config{DataDir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	store := opened.Store
	runner, err := projections.NewRunner(store, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRunner := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = runner.Run(runCtx) })
	defer func() { stopRunner(); wg.Wait() }()

	var instants []instant
	record := func() {
		head, err := store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := runner.WaitFor(ctx, head); err != nil {
			t.Fatal(err)
		}
		in := instant{at: time.Now().Format(time.RFC3339Nano), digests: map[string]string{}, json: map[string][]byte{}}
		at, _ := time.Parse(time.RFC3339Nano, in.at)
		for _, st := range runner.Status(ctx) {
			in.digests[st.Name] = st.Digest
			var b bytes.Buffer
			if err := runner.ExportJSON(&b, st.Name, at); err != nil {
				t.Fatal(err)
			}
			in.json[st.Name] = b.Bytes()
		}
		instants = append(instants, in)
		// The next command is recorded strictly after this instant: the log's clock is this
		// process's, so once it has passed the instant, anything appended is later.
		for !time.Now().After(at) {
			runtime.Gosched()
		}
	}
	clock := time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)
	h := command.New(store, command.Options{Clock: func() time.Time { clock = clock.Add(time.Hour); return clock }})
	method := h.Catalogue().MethodCodes()[0]
	meta := command.Meta{Actor: "customer-9", Channel: "app", CorrelationID: "c-9"}
	subID := uuid.New()
	if _, _, err := h.ExecuteSubscription(ctx, subID, domain.OpenSubscription{
		SubscriptionID: subID, OwnerID: "customer-9", Language: "it",
		Holder:   domain.Holder{Name: "Neri S.r.l.", Email: "conti@neri.example"},
		Services: []domain.Service{{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.DateOf(clock.AddDate(0, 3, 0))}},
	}, command.Meta{Actor: "operator:bo", Channel: "import"}, nil); err != nil {
		t.Fatal(err)
	}
	record()
	orderID, _, _, err := h.OpenOrder(ctx, subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	record()
	for _, cmd := range []domain.OrderCommand{
		domain.ProceedToCheckout{},
		domain.SelectPaymentMethod{Method: method},
		domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2026-01"},
	} {
		if _, _, err := h.ExecuteOrder(ctx, orderID, cmd, meta, nil); err != nil {
			t.Fatal(err)
		}
	}
	record()

	// verify: against the server, through its audit API, with a token minted from --data.
	var mu sync.Mutex
	var alter func([]projections.ModelStatus)
	status := runner.Status(ctx)
	srv := orderdStandin(t, dir, store, func() []projections.ModelStatus {
		st := append([]projections.ModelStatus(nil), status...)
		mu.Lock()
		defer mu.Unlock()
		if alter != nil {
			alter(st)
		}
		return st
	})
	if out := orderctl(t, 0, "verify", "--server", srv.URL, "--data", dir); !strings.Contains(out, fmt.Sprintf("ok: %d read models", len(projections.ModelNames))) {
		t.Fatalf("verify: %s", out)
	}
	mu.Lock()
	alter = func(st []projections.ModelStatus) { st[2].Digest = strings.Repeat("f", 64) }
	mu.Unlock()
	out := orderctl(t, 1, "verify", "--server", srv.URL, "--data", dir)
	if !strings.Contains(out, "differ from the log: "+status[2].Name+"\n") || !strings.Contains(out, "DIFFERS") {
		t.Fatalf("verify with %s altered: %s", status[2].Name, out)
	}
	if out := orderctl(t, 1, "verify", "--server", srv.URL, "--token", "not-a-token"); !strings.Contains(out, "401") {
		t.Fatalf("verify with a bad token: %s", out)
	}
	orderctl(t, 2, "verify", "--data", dir) // no --server

	// history reads the same server's audit API, and says so when the stream is not there.
	if out := orderctl(t, 0, "history", "--server", srv.URL, "--data", dir, orderID.String()); !strings.Contains(out, "OrderConfirmed") || !strings.Contains(out, "hash chain intact") {
		t.Fatalf("history --server: %s", out)
	}
	if out := orderctl(t, 1, "history", "--server", srv.URL, "--data", dir, uuid.NewString()); !strings.Contains(out, "no stream") {
		t.Fatalf("history --server of an unknown id: %s", out)
	}

	stopRunner()
	wg.Wait()
	if err := opened.Close(); err != nil {
		t.Fatal(err)
	}

	// verify reading the log from the data folder itself, once nothing holds it.
	mu.Lock()
	alter = nil
	mu.Unlock()
	if out := orderctl(t, 0, "verify", "--server", srv.URL, "--data", dir, "--log-from-data"); !strings.Contains(out, fmt.Sprintf("ok: %d read models", len(projections.ModelNames))) {
		t.Fatalf("verify --log-from-data: %s", out)
	}

	// replay: as of each instant, what the live models answered then.
	for i, in := range instants {
		outDir := filepath.Join(t.TempDir(), "replay")
		out := orderctl(t, 0, "replay", "--data", dir, "--as-of", in.at, "--out", outDir)
		for name, want := range in.json {
			if !strings.Contains(out, in.digests[name]) {
				t.Fatalf("instant %d: %s's digest %s not in\n%s", i, name, in.digests[name], out)
			}
			got, err := os.ReadFile(filepath.Join(outDir, name+".json"))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("instant %d: %s.json %v\n%s\nlive\n%s", i, name, err, got, want)
			}
			if _, err := os.Stat(filepath.Join(outDir, name+".csv")); err != nil {
				t.Fatal(err)
			}
		}
		var doc audit.ReplayReport
		var stdout, stderr bytes.Buffer
		if code := run([]string{"replay", "--data", dir, "--as-of", in.at}, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Fatalf("replay to stdout: %d\n%s", code, stderr.String())
		}
		if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || len(doc.Models) != len(projections.ModelNames) {
			t.Fatalf("replay JSON: %v\n%s", err, stdout.String())
		}
		for _, m := range doc.Models {
			if m.Digest != in.digests[m.Name] {
				t.Fatalf("instant %d: %s digest %s on stdout, live %s", i, m.Name, m.Digest, in.digests[m.Name])
			}
		}
	}
	csvOnly := filepath.Join(t.TempDir(), "csv")
	orderctl(t, 0, "replay", "--data", dir, "--as-of", instants[2].at, "--out", csvOnly, "--format", "csv")
	if _, err := os.Stat(filepath.Join(csvOnly, projections.QuotaName+".json")); err == nil {
		t.Fatal("--format csv wrote JSON")
	}
	orderctl(t, 2, "replay", "--data", dir)
	orderctl(t, 2, "replay", "--data", dir, "--as-of", "yesterday")
	orderctl(t, 2, "replay", "--data", dir, "--as-of", instants[0].at, "--format", "csv")
	orderctl(t, 0, "replay", "-h")
	orderctl(t, 0, "verify", "-h")
}
