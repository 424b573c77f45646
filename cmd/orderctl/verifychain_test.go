package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/app/apptest"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/command"
)

// orderdRound runs the real product on dir, lets it serve the commands of fn through its
// command handler, and stops it (it signs the log head at shutdown).
func orderdRound(t *testing.T, dir string, fn func(h *command.Handler)) {
	t.Helper()
	a := apptest.Start(t, apptest.Config(dir), nil)
	fn(a.Commands)
	a.Stop()
}

// confirmedOrder opens a subscription and confirms an order on it; pay pays it too, with
// reference as the transaction reference.
func confirmedOrder(t *testing.T, h *command.Handler, pay bool, reference string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	subID := uuid.New()
	owner := "customer-" + subID.String()[:8]
	if _, _, err := h.ExecuteSubscription(ctx, subID, domain.OpenSubscription{
		SubscriptionID: subID, OwnerID: owner, Language: "it",
		Holder:   domain.Holder{Name: "Verdi S.r.l.", Email: "conti@verdi.example"},
		Services: []domain.Service{{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.DateOf(time.Now().AddDate(0, 4, 0))}},
	}, command.Meta{Actor: "operator:bo", Channel: "import"}, nil); err != nil {
		t.Fatal(err)
	}
	meta := command.Meta{Actor: owner, Channel: "app"}
	orderID, _, _, err := h.OpenOrder(ctx, subID, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []domain.OrderCommand{domain.ProceedToCheckout{}, domain.SelectPaymentMethod{Method: h.Catalogue().MethodCodes()[0]},
		domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2026-01"}} {
		if _, _, err := h.ExecuteOrder(ctx, orderID, c, meta, nil); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	if pay {
		o, _, _, err := h.Order(ctx, orderID)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.ExecuteOrder(ctx, orderID, domain.RegisterPayment{AmountCents: o.DueCents(), Method: o.PaymentMethod, Reference: reference},
			command.Meta{Actor: "payments:gw", Channel: "bank"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return orderID
}

// A byte flipped inside a payment in a copy's block file: verify-chain exits 1 naming the
// missing position; the intact folder verifies, checkpoints included.
func TestVerifyChainNamesTheGapOfAFlippedByte(t *testing.T) {
	dir := t.TempDir()
	var paid uuid.UUID
	orderdRound(t, dir, func(h *command.Handler) {
		confirmedOrder(t, h, false, "")
		paid = confirmedOrder(t, h, true, "CRO-FLIP")
		confirmedOrder(t, h, false, "")
	})
	out := orderctl(t, 0, "verify-chain", "--data", dir)
	if !strings.Contains(out, "ok:") || !strings.Contains(out, "1 signed checkpoints verified") {
		t.Fatalf("verify-chain on the intact folder: %s", out)
	}

	// Where the payment is: the first event of its commit.
	var payment uint64
	hist := orderctl(t, 0, "history", "--json", "--data", dir, paid.String())
	var tl struct {
		Entries []struct {
			Type     string `json:"type"`
			Position uint64 `json:"position"`
		} `json:"events"`
	}
	_ = json.Unmarshal([]byte(hist), &tl)
	for _, e := range tl.Entries {
		if e.Type == "PaymentRegistered" {
			payment = e.Position
		}
	}
	if payment == 0 {
		t.Fatalf("no payment in the history: %s", hist)
	}

	cp := t.TempDir()
	jstest.CopyDir(t, dir, cp)
	jstest.FlipByte(t, filepath.Join(cp, "jetstream"), `"reference":"CRO-FLIP"`, false)
	out = orderctl(t, 1, "verify-chain", "--data", cp)
	if want := fmt.Sprintf("DAMAGED: position %d holds no commit (lost from order-%s)", payment, paid); !strings.Contains(out, want) {
		t.Fatalf("verify-chain on the damaged copy: %s\nwant %q", out, want)
	}
}

// An export with an order's confirmation altered and every hash and the trailer
// recomputed: verify-chain, given the data folder's public key, finds it between two
// checkpoints, and import refuses it; without any key it only warns.
func TestVerifyChainAndImportCatchARewrittenExport(t *testing.T) {
	dir := t.TempDir()
	var target uuid.UUID
	orderdRound(t, dir, func(h *command.Handler) { confirmedOrder(t, h, false, "") })
	orderdRound(t, dir, func(h *command.Handler) { target = confirmedOrder(t, h, false, "") })
	orderdRound(t, dir, func(h *command.Handler) { confirmedOrder(t, h, false, "") })
	file := filepath.Join(t.TempDir(), "log.jsonl")
	orderctl(t, 0, "export", "--data", dir, "--out", file)
	pub := checkpoint.PublicKeyFile(dir)
	if out := orderctl(t, 0, "verify-chain", "--file", file, "--checkpoint-key", pub); !strings.Contains(out, "3 signed checkpoints verified") {
		t.Fatalf("verify-chain on the export: %s", out)
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var (
		envs []eventstore.Envelope
		last = -1
	)
	_, err = audit.ReadExport(bytes.NewReader(raw), func(env eventstore.Envelope, _ int) error {
		// The target order's confirmation: the event whose terms a forger would change.
		if env.Stream == eventstore.StreamName(command.OrderCategory, target) && env.Type == "OrderConfirmed" {
			last = len(envs)
		}
		envs = append(envs, env)
		return nil
	})
	if err != nil || last < 0 {
		t.Fatalf("read export: %v, target %d", err, last)
	}
	forgedPayload := strings.Replace(string(envs[last].Payload), `"2026-01"`, `"2099-12"`, 1)
	if forgedPayload == string(envs[last].Payload) {
		t.Fatalf("nothing to forge in %s", envs[last].Payload)
	}
	envs[last].Payload = json.RawMessage(forgedPayload)
	// Recompute as a forger would: relink every chain, then the trailer's digest.
	var (
		b     strings.Builder
		dig   audit.Digester
		links = map[string]string{}
	)
	for _, env := range envs {
		env.Metadata.PrevHash = links[env.Stream]
		links[env.Stream] = dig.Add(env)
		line, _ := json.Marshal(env)
		b.Write(line)
		b.WriteByte('\n')
	}
	var tr struct {
		Trailer map[string]any `json:"trailer"`
	}
	_ = json.Unmarshal([]byte(rows[len(rows)-1]), &tr)
	tr.Trailer["digest"] = dig.Digest().Sum
	line, _ := json.Marshal(tr)
	b.Write(line)
	b.WriteByte('\n')
	forged := filepath.Join(t.TempDir(), "forged.jsonl")
	if err := os.WriteFile(forged, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	empty := t.TempDir()
	out := orderctl(t, 0, "verify-chain", "--file", forged, "--data", empty)
	if !strings.Contains(out, "ok:") || !strings.Contains(out, "WARNING: 3 signed checkpoints not checked") {
		t.Fatalf("without a key: %s", out)
	}
	out = orderctl(t, 1, "verify-chain", "--file", forged, "--checkpoint-key", pub)
	if !strings.Contains(out, "TAMPERED: checkpoint at") || !strings.Contains(out, "the log was changed after event") {
		t.Fatalf("with the key: %s", out)
	}
	// The data folder it is pointed at vouches for its key too.
	orderctl(t, 1, "verify-chain", "--file", forged, "--data", dir)
	out = orderctl(t, 1, "import", "--data", t.TempDir(), "--relaxed-sync", "--checkpoint-key", pub, forged)
	if !strings.Contains(out, "checkpoint at") {
		t.Fatalf("import of the forgery: %s", out)
	}
}
