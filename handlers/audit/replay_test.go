package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/projections"
)

// snapshotAt is what the live read models answered at an instant.
type snapshotAt struct {
	at       time.Time
	position uint64
	digests  map[string]string
	json     map[string][]byte
	csv      map[string][]byte
}

// live runs the projections Runner on store until the test ends (or stop is called).
type live struct {
	runner *projections.Runner
	stop   func()
}

func startRunner(t *testing.T, store eventstore.Store) live {
	t.Helper()
	r, err := projections.NewRunner(store, projections.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return live{r, stop}
}

// record waits until the live models have folded the whole log, then takes what they
// answer at this instant.
func (l live) record(t *testing.T, store eventstore.Store) snapshotAt {
	t.Helper()
	ctx := testCtx(t)
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.runner.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
	// The instant as an auditor types it: RFC 3339, wall clock only.
	at, _ := time.Parse(time.RFC3339Nano, time.Now().Format(time.RFC3339Nano))
	s := snapshotAt{at: at, position: head, digests: map[string]string{}, json: map[string][]byte{}, csv: map[string][]byte{}}
	for _, st := range l.runner.Status(ctx) {
		s.digests[st.Name] = st.Digest
	}
	for _, name := range projections.ModelNames {
		var js, csv bytes.Buffer
		if err := l.runner.ExportJSON(&js, name, at); err != nil {
			t.Fatal(err)
		}
		if err := l.runner.ExportCSV(&csv, name, at); err != nil {
			t.Fatal(err)
		}
		s.json[name], s.csv[name] = js.Bytes(), csv.Bytes()
	}
	// The next command is recorded strictly after this instant: the log's clock is this
	// process's, so once it has passed the instant, anything appended is later.
	for !time.Now().After(at) {
		runtime.Gosched()
	}
	return s
}

// runScenario drives the real command handler on a clock of its own and records what the
// live read models answered between commands: two subscriptions; one order paid in full,
// its purchase applied and usage reported; another confirmed and left unpaid, then paid in
// part.
func runScenario(t *testing.T, store eventstore.Store, l live) []snapshotAt {
	t.Helper()
	ctx := testCtx(t)
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(7 * time.Hour); return now }
	h := command.New(store, command.Options{Clock: clock})
	method := h.Catalogue().MethodCodes()[0]
	var snaps []snapshotAt
	snap := func() { snaps = append(snaps, l.record(t, store)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	meta := func(actor, channel string) command.Meta {
		return command.Meta{Actor: actor, Channel: channel, CorrelationID: "replay-" + actor}
	}

	snap() // nothing yet
	subs := []uuid.UUID{uuid.New(), uuid.New()}
	for i, id := range subs {
		_, _, err := h.ExecuteSubscription(ctx, id, domain.OpenSubscription{
			SubscriptionID: id, OwnerID: "customer-" + id.String()[:4], Language: "it",
			Holder: domain.Holder{Name: "Verdi & Figli S.r.l.", Email: "conti@verdi.example"},
			Services: []domain.Service{
				{Kind: domain.KindBase, Quantity: 1, ExpiresOn: domain.DateOf(now.AddDate(0, 4+i, 0))},
				{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: domain.DateOf(now.AddDate(0, 2, 0))},
			},
		}, meta("operator:ada", "import"), nil)
		must(err)
		snap()
	}
	flow := func(sub uuid.UUID, cart domain.OrderCommand) (uuid.UUID, domain.Order) {
		id, _, _, err := h.OpenOrder(ctx, sub, domain.RequestSpaceIncrease{GB: 1, Channel: "panel"}, meta("customer", "panel"))
		must(err)
		snap()
		var o domain.Order
		for _, cmd := range []domain.OrderCommand{
			cart,
			domain.ProceedToCheckout{},
			domain.SelectPaymentMethod{Method: method},
			domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "2026-01"},
		} {
			_, o, err = h.ExecuteOrder(ctx, id, cmd, meta("customer", "app"), nil)
			// This clock runs 7 hours a command: a confirmation on a later day than its
			// quote is refused with the new quote, which the customer confirms (docs/RULES.md, rule 1).
			var changed *domain.QuoteChangedError
			for try := 0; errors.As(err, &changed) && try < 5; try++ {
				c := cmd.(domain.ConfirmOrder)
				c.ExpectedTotalCents = &changed.Quote.TotalCents
				_, o, err = h.ExecuteOrder(ctx, id, c, meta("customer", "app"), nil)
			}
			must(err)
			snap()
		}
		return id, o
	}
	paid, o := flow(subs[0], domain.ModifyOrder{GB: 2, CoTermination: true})
	// The payment that pays the order also grants its space, in the same request.
	_, _, err := h.ExecuteOrder(ctx, paid, domain.RegisterPayment{AmountCents: o.Quote.TotalCents, Method: method, Reference: "tx-1"}, meta("payments:bank", "payments"), nil)
	must(err)
	snap()
	_, _, err = h.ExecuteSubscription(ctx, subs[0], domain.ReportUsage{UsedBytes: 900 << 20}, meta("usage", "system"), nil)
	must(err)
	snap()
	unpaid, o := flow(subs[1], domain.ToggleCoTermination{Enabled: false})
	_, _, err = h.ExecuteOrder(ctx, unpaid, domain.RegisterPayment{AmountCents: o.Quote.TotalCents / 3, Method: method, Reference: "tx-2"}, meta("payments:bank", "payments"), nil)
	must(err)
	snap()
	return snaps
}

func TestReplayAsOfEachInstantIsWhatTheLiveModelsAnswered(t *testing.T) {
	store := embedded(t)
	l := startRunner(t, store)
	snaps := runScenario(t, store, l)
	for i := 1; i < len(snaps); i++ {
		if snaps[i].position == snaps[i-1].position {
			t.Fatalf("instant %d: the log did not move", i)
		}
	}

	for i, want := range snaps {
		var prog countingProgress
		r, err := audit.ReplayAsOf(testCtx(t), store, want.at, &prog)
		if err != nil {
			t.Fatal(err)
		}
		if r.Models.Position != want.position {
			t.Fatalf("instant %d (%s): replay folded to position %d, the live models were at %d", i, want.at, r.Models.Position, want.position)
		}
		if prog.starts != 1 || prog.dones != 1 || (want.position > 0 && prog.events == 0) {
			t.Fatalf("instant %d: progress %+v", i, prog)
		}
		dir := t.TempDir()
		rep, err := r.WriteFiles(dir, true, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range rep.Models {
			if m.Digest != want.digests[m.Name] {
				t.Fatalf("instant %d: %s digest %s, live %s", i, m.Name, m.Digest, want.digests[m.Name])
			}
			for ext, wantBytes := range map[string][]byte{".json": want.json[m.Name], ".csv": want.csv[m.Name]} {
				got, err := os.ReadFile(filepath.Join(dir, m.Name+ext))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, wantBytes) {
					t.Fatalf("instant %d: %s%s replayed\n%s\nlive\n%s", i, m.Name, ext, got, wantBytes)
				}
			}
		}
		var manifest audit.ReplayReport
		b, _ := os.ReadFile(filepath.Join(dir, "replay.json"))
		if err := json.Unmarshal(b, &manifest); err != nil || !manifest.AsOf.Equal(want.at) || manifest.Position != want.position || len(manifest.Models) != len(projections.ModelNames) {
			t.Fatalf("replay.json: %v\n%s", err, b)
		}

		// The JSON document on standard output carries the same views.
		var doc bytes.Buffer
		if err := r.WriteJSON(&doc); err != nil {
			t.Fatal(err)
		}
		var got audit.ReplayReport
		if err := json.Unmarshal(doc.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		for _, m := range got.Models {
			if m.Digest != want.digests[m.Name] || !bytes.Equal(compactJSON(m.View), compactJSON(want.json[m.Name])) {
				t.Fatalf("instant %d: %s in the JSON document:\n%s\nlive\n%s", i, m.Name, m.View, want.json[m.Name])
			}
		}
	}
	// The views must actually have changed along the way, or the comparison proves little.
	first, last := snaps[0], snaps[len(snaps)-1]
	for _, name := range projections.ModelNames {
		if first.digests[name] == last.digests[name] {
			t.Errorf("%s did not change over the scenario", name)
		}
	}
}

type countingProgress struct {
	starts, dones, events int
}

func (p *countingProgress) Start(uint64)            { p.starts++ }
func (p *countingProgress) Advance(_ uint64, n int) { p.events += n }
func (p *countingProgress) Done()                   { p.dones++ }
