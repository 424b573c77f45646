package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// embedded opens the real JetStream store on an in-process server in a temporary folder.
func embedded(t testing.TB) eventstore.Store {
	_, s := jstest.Start(t, jstest.Relaxed)
	return s
}

type seeded struct {
	subs   []uuid.UUID
	orders []uuid.UUID
}

// seed runs real commands through the command handler: per subscription, an operator
// opens it, the customer orders from the panel, toggles co-termination from the app, goes
// to checkout and picks a payment method in the customer area, and confirms from the app.
func seed(t testing.TB, store eventstore.Store, n int) seeded {
	t.Helper()
	ctx := testCtx(t)
	h := command.New(store, command.Options{})
	method := h.Catalogue().MethodCodes()[0]
	var s seeded
	for i := range n {
		subID := uuid.New()
		op := command.Meta{Actor: "operator:ada", Channel: "import", CorrelationID: fmt.Sprintf("import-%d", i)}
		if _, _, err := h.ExecuteSubscription(ctx, subID, domain.OpenSubscription{
			SubscriptionID: subID, OwnerID: fmt.Sprintf("customer-%d", i),
			Holder:   domain.Holder{Name: "Rossi S.r.l.", Email: "amministrazione@rossi.example"},
			Language: "it",
			Services: []domain.Service{
				{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.DateOf(time.Now().AddDate(0, 5, 0))},
				{Kind: domain.KindUsers, Quantity: 3, ExpiresOn: domain.DateOf(time.Now().AddDate(0, 3, 0))},
			},
		}, op, nil); err != nil {
			t.Fatalf("open subscription: %v", err)
		}
		customer := fmt.Sprintf("customer-%d", i)
		corr := fmt.Sprintf("order-flow-%d", i)
		orderID, _, _, err := h.OpenOrder(ctx, subID, domain.RequestSpaceIncrease{GB: 1, Channel: "panel"}, command.Meta{Actor: customer, Channel: "panel", CorrelationID: corr})
		if err != nil {
			t.Fatalf("request space increase: %v", err)
		}
		steps := []struct {
			channel string
			cmd     domain.OrderCommand
		}{
			{"app", domain.ToggleCoTermination{Enabled: false}},
			{"customer-area", domain.ProceedToCheckout{}},
			{"customer-area", domain.SelectPaymentMethod{Method: method}},
			{"app", domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2026-01"}},
		}
		for _, st := range steps {
			if _, _, err := h.ExecuteOrder(ctx, orderID, st.cmd, command.Meta{Actor: customer, Channel: st.channel, CorrelationID: corr}, nil); err != nil {
				t.Fatalf("%T: %v", st.cmd, err)
			}
		}
		s.subs = append(s.subs, subID)
		s.orders = append(s.orders, orderID)
	}
	return s
}

func readLog(t testing.TB, store eventstore.Store) []eventstore.Envelope {
	t.Helper()
	var all []eventstore.Envelope
	after := uint64(0)
	for {
		page, err := store.ReadAll(testCtx(t), after, 500)
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// sameEvents compares two logs event by event: ids, order, streams, versions, commits,
// types, payloads and metadata; positions too when samePositions.
func sameEvents(t *testing.T, want, got []eventstore.Envelope, samePositions bool) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if samePositions && w.Position != g.Position {
			t.Fatalf("event %d at position %d, want %d", i, g.Position, w.Position)
		}
		if w.ID != g.ID || w.Stream != g.Stream || w.StreamVersion != g.StreamVersion || w.Type != g.Type ||
			w.SchemaVersion != g.SchemaVersion || w.Index != g.Index || w.Count != g.Count ||
			!bytes.Equal(compactJSON(w.Payload), compactJSON(g.Payload)) ||
			!w.Metadata.OccurredAt.Equal(g.Metadata.OccurredAt) || w.Metadata.PrevHash != g.Metadata.PrevHash ||
			w.Metadata.Actor != g.Metadata.Actor || w.Metadata.Channel != g.Metadata.Channel ||
			w.Metadata.CorrelationID != g.Metadata.CorrelationID || w.Metadata.CausationID != g.Metadata.CausationID {
			t.Fatalf("event %d differs:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func compactJSON(b []byte) []byte {
	var out bytes.Buffer
	_ = json.Compact(&out, b)
	return out.Bytes()
}

func export(t testing.TB, store eventstore.Store) ([]byte, audit.Digest) {
	t.Helper()
	var buf bytes.Buffer
	d, err := audit.Export(testCtx(t), store, &buf, nil)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes(), d
}

func TestExportImportVerifyGivesTheSameLog(t *testing.T) {
	src := embedded(t)
	seed(t, src, 4)
	file, d := export(t, src)
	want := readLog(t, src)
	if d.Events != uint64(len(want)) || d.Position != want[len(want)-1].Position {
		t.Fatalf("export digest %v for %d events", d, len(want))
	}
	rep, err := audit.VerifyExport(bytes.NewReader(file), nil)
	if err != nil {
		t.Fatalf("verify export: %v", err)
	}
	if rep.Digest != d || rep.Streams != 8 {
		t.Fatalf("verify export: %+v, want digest %v over 8 streams", rep, d)
	}

	dst := embedded(t)
	imp, err := audit.Import(testCtx(t), dst, bytes.NewReader(file), audit.ImportOptions{})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if imp.Events != len(want) || imp.Skipped != 0 || imp.Target.Sum != d.Sum || imp.Source.Sum != d.Sum {
		t.Fatalf("import report %+v, want %d events with digest %s", imp, len(want), d.Sum)
	}
	sameEvents(t, want, readLog(t, dst), true)
	got, err := audit.VerifyStore(testCtx(t), dst, &audit.Expect{Position: d.Position, Digest: d.Sum}, nil)
	if err != nil || got.Digest.Sum != d.Sum {
		t.Fatalf("verify target: %+v, %v; want digest %s", got, err, d.Sum)
	}

	// Running the import again writes nothing and still verifies.
	again, err := audit.Import(testCtx(t), dst, bytes.NewReader(file), audit.ImportOptions{})
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	if again.Skipped != again.Commits || again.Target.Sum != d.Sum {
		t.Fatalf("second import %+v: every commit should be skipped", again)
	}
	sameEvents(t, want, readLog(t, dst), true)
}

func TestImportRefusesATargetHoldingAnotherLog(t *testing.T) {
	src := embedded(t)
	seed(t, src, 1)
	file, _ := export(t, src)
	dst := embedded(t)
	seed(t, dst, 1)
	if _, err := audit.Import(testCtx(t), dst, bytes.NewReader(file), audit.ImportOptions{}); err == nil {
		t.Fatal("import into a store with other events succeeded")
	}
}

func TestImportIntoKurrentDBStandin(t *testing.T) {
	src := embedded(t)
	seed(t, src, 3)
	file, d := export(t, src)
	conn, stop := standin.Start()
	t.Cleanup(stop)
	dst, err := kurrentdb.Open(testCtx(t), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatalf("open stand-in: %v", err)
	}
	t.Cleanup(func() { _ = dst.Close() })
	imp, err := audit.Import(testCtx(t), dst, bytes.NewReader(file), audit.ImportOptions{})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if imp.Target.Sum != d.Sum {
		t.Fatalf("digest %s in the stand-in, want %s", imp.Target.Sum, d.Sum)
	}
	// KurrentDB numbers $all its own way: everything but positions is kept.
	sameEvents(t, readLog(t, src), readLog(t, dst), false)
	back, _ := export(t, dst)
	if _, err := audit.VerifyExport(bytes.NewReader(back), &audit.Expect{Position: ^uint64(0), Digest: d.Sum}); err != nil {
		t.Fatalf("verify the stand-in's export: %v", err)
	}
}
