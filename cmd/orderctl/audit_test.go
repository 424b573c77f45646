package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/command"
)

// seedData writes one subscription and one order, through the real command handler, into
// an embedded store in a fresh data folder, and closes it again.
func seedData(t *testing.T) (dir string, orderID uuid.UUID) {
	dir = t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := open.Open(ctx, open.Config{DataDir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := command.New(s.Store, command.Options{})
	subID := uuid.New()
	if _, _, err := h.ExecuteSubscription(ctx, subID, domain.OpenSubscription{
		SubscriptionID: subID, OwnerID: "customer-7", Language: "it",
		Holder:   domain.Holder{Name: "Bianchi S.p.A.", Email: "conti@bianchi.example"},
		Services: []domain.Service{{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.DateOf(time.Now().AddDate(0, 4, 0))}},
	}, command.Meta{Actor: "operator:bo", Channel: "import"}, nil); err != nil {
		t.Fatal(err)
	}
	orderID, _, _, err = h.OpenOrder(ctx, subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, command.Meta{Actor: "customer-7", Channel: "app", CorrelationID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ExecuteOrder(ctx, orderID, domain.ProceedToCheckout{}, command.Meta{Actor: "customer-7", Channel: "customer-area", CorrelationID: "c-1"}, nil); err != nil {
		t.Fatal(err)
	}
	return dir, orderID
}

func orderctl(t *testing.T, want int, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != want {
		t.Fatalf("orderctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

func TestAuditCommands(t *testing.T) {
	src, orderID := seedData(t)
	hist := orderctl(t, 0, "history", "--data", src, orderID.String())
	for _, want := range []string{"SpaceIncreaseRequested", "CheckoutStarted", "customer-7", "customer-area", "app", "c-1", "hash chain intact"} {
		if !strings.Contains(hist, want) {
			t.Fatalf("history lacks %q:\n%s", want, hist)
		}
	}
	if js := orderctl(t, 0, "history", "--json", "--data", src, "order-"+orderID.String()); !strings.Contains(js, `"channel": "customer-area"`) {
		t.Fatalf("history --json:\n%s", js)
	}

	file := filepath.Join(t.TempDir(), "log.jsonl")
	exp := orderctl(t, 0, "export", "--data", src, "--out", file)
	if !strings.Contains(exp, "exported 4 events") {
		t.Fatalf("export: %s", exp)
	}
	digest := strings.Fields(orderctl(t, 0, "digest", "--data", src))[0]
	if !strings.Contains(orderctl(t, 0, "verify-chain", "--file", file), digest) {
		t.Fatal("verify-chain on the file does not print the store's digest")
	}

	dst := t.TempDir()
	if out := orderctl(t, 0, "import", "--data", dst, file); !strings.Contains(out, digest) {
		t.Fatalf("import: %s", out)
	}
	orderctl(t, 0, "import", "--data", dst, file) // a re-run is a no-op
	out := orderctl(t, 0, "verify-chain", "--data", dst, "--expect-digest", digest, "--at", "4")
	if !strings.Contains(out, "matches") {
		t.Fatalf("verify-chain: %s", out)
	}

	b, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(b), "\n")
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	os.WriteFile(tampered, []byte(strings.Replace(lines[0], "Bianchi", "Bianca", 1)+strings.Join(lines[1:], "")), 0o644)
	if out := orderctl(t, 1, "verify-chain", "--file", tampered); !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "line") {
		t.Fatalf("verify-chain on a tampered file: %s", out)
	}
	if out := orderctl(t, 1, "import", "--data", t.TempDir(), tampered); !strings.Contains(out, "line") {
		t.Fatalf("import of a tampered file: %s", out)
	}
	orderctl(t, 0, "history", "-h")
	orderctl(t, 0, "export", "--help")
}
