package projections

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
)

func digests(t *testing.T, ms *Models) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range ModelNames {
		d, err := ms.Digest(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = d
	}
	return out
}

func runnerDigests(t *testing.T, r *Runner) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, st := range r.Status(context.Background()) {
		if st.Error != "" {
			t.Fatal(st.Error)
		}
		out[st.Name] = st.Digest
	}
	return out
}

func sameDigests(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for _, name := range ModelNames {
		if got[name] != want[name] || want[name] == "" {
			t.Errorf("%s: %s digest %s, want %s", what, name, got[name], want[name])
		}
	}
}

// The snapshot encoding is canonical: a state restored from it has the same digest, and
// folding on from it ends where a fold from zero ends.
func TestSnapshotRoundTripIsCanonical(t *testing.T) {
	envs := envelopes(t, newScenario(7).commits(3000), 0)
	half := len(envs) / 2
	for !envs[half-1].LastInCommit() {
		half++
	}
	first := foldAll(t, envs[:half])
	for _, name := range ModelNames {
		m, _ := first.Model(name)
		b, err := m.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		back, _ := newModel(name)
		if err := back.UnmarshalState(b); err != nil {
			t.Fatal(err)
		}
		d1, _ := Digest(m)
		d2, _ := Digest(back)
		if d1 != d2 {
			t.Fatalf("%s: digest changes through the snapshot", name)
		}
		for _, env := range envs[half:] {
			ev, _ := codec.DecodeDomain(env)
			back.Apply(env, ev)
		}
		full := foldAll(t, envs)
		want, _ := full.Digest(name)
		if got, _ := Digest(back); got != want {
			t.Fatalf("%s: restored and folded on differs from a fold from zero", name)
		}
	}
}

// newRunner starts a runner on store with snapshots in dir; stop cancels it and waits.
func newRunner(t *testing.T, store eventstore.Store, opts Options) (r *Runner, stop func()) {
	t.Helper()
	r, err := NewRunner(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return r, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func waitFor(t *testing.T, r *Runner, pos uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		t.Fatalf("wait for %d: %v", pos, err)
	}
}

// A long random scenario, folded live while it is appended, equals each model rebuilt
// from zero, a fold of the whole log as of now, and a fold of the same commits without a
// store; the lists' totals add up; each model rebuilds beside the live one.
func TestLiveEqualsRebuildFromZero(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	r, stop := newRunner(t, store, Options{Dir: t.TempDir(), SnapshotEvery: 500})
	defer stop()

	g := newScenario(42)
	var all []commit
	var last uint64
	for range 10 {
		cs := g.commits(400)
		all = append(all, cs...)
		last = appendAll(t, store, cs)
	}
	waitFor(t, r, last)
	live := runnerDigests(t, r)
	want := digests(t, foldAll(t, envelopes(t, all, 0)))
	sameDigests(t, "live vs pure fold", live, want)

	asOf, err := AsOf(context.Background(), store, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if asOf.Position != last {
		t.Fatalf("as-of position %d, head %d", asOf.Position, last)
	}
	sameDigests(t, "as of now", digests(t, asOf), live)

	for _, name := range ModelNames {
		if err := r.Rebuild(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	sameDigests(t, "rebuilt", runnerDigests(t, r), live)
	for _, st := range r.Status(context.Background()) {
		if st.Position != last || st.Lag != 0 || st.Head != last {
			t.Fatalf("status %+v, head %d", st, last)
		}
	}

	// The live runner goes on after a rebuild.
	more := g.commits(300)
	last = appendAll(t, store, more)
	waitFor(t, r, last)
	all = append(all, more...)
	sameDigests(t, "after rebuild and more", runnerDigests(t, r), digests(t, foldAll(t, envelopes(t, all, 0))))

	// Totals match the list, for a few days.
	for _, d := range []time.Duration{0, 20 * 24 * time.Hour, 90 * 24 * time.Hour} {
		day := g.now.Add(d)
		var list []PendingView
		cursor := ""
		for {
			p, err := r.PendingPayments(PendingQuery{Cursor: cursor, Limit: 17}, day)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, p.Orders...)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		s := r.PendingSummary(day)
		if s.Total.Count == 0 {
			t.Fatal("the scenario left no pending order: the totals test proves nothing")
		}
		checkTotals(t, list, s)
	}
	// Every quota the runner knows has its owner; expiries exist for it.
	for _, q := range r.Quotas(g.now) {
		owner, ok := r.Owner(q.SubscriptionID)
		if !ok || owner != q.OwnerID {
			t.Fatalf("owner of %s: %q %v", q.SubscriptionID, owner, ok)
		}
		if _, ok := r.SubscriptionExpiries(q.SubscriptionID, g.now); !ok {
			t.Fatalf("no expiries for %s", q.SubscriptionID)
		}
	}
}

// A runner stopped between a fold and its next checkpoint (a crash: no final save)
// resumes from its snapshot, folds the rest once, and equals a fold from zero.
func TestRestartResumesWithoutDoubleCounting(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	dir := t.TempDir()
	g := newScenario(3)
	first := g.commits(2000)
	last := appendAll(t, store, first)

	r, stop := newRunner(t, store, Options{Dir: dir, SnapshotEvery: 700, SnapshotInterval: time.Hour, noFinalSave: true})
	waitFor(t, r, last)
	stop() // no final save: the events since the last checkpoint are folded and lost

	saved := map[string]uint64{}
	for _, name := range ModelNames {
		snap, ok, err := readSnapshot(dir, name)
		if err != nil || !ok {
			t.Fatalf("%s: no snapshot (%v)", name, err)
		}
		if snap.Position == 0 || snap.Position >= last {
			t.Fatalf("%s: snapshot at %d of %d: the test would not exercise a resume", name, snap.Position, last)
		}
		saved[name] = snap.Position
	}

	second := g.commits(500)
	last = appendAll(t, store, second)
	// Before it runs, the new runner stands where the snapshots left the models.
	loaded, err := NewRunner(store, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range loaded.Status(context.Background()) {
		if st.Position != saved[st.Name] {
			t.Fatalf("%s resumes at %d, snapshot at %d", st.Name, st.Position, saved[st.Name])
		}
	}
	r2, stop2 := newRunner(t, store, Options{Dir: dir})
	defer stop2()
	waitFor(t, r2, last)
	want := digests(t, foldAll(t, envelopes(t, append(first, second...), 0)))
	sameDigests(t, "resumed", runnerDigests(t, r2), want)
}

// A snapshot of another code version is discarded: the model is rebuilt from zero.
func TestOtherVersionSnapshotIsDiscarded(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	dir := t.TempDir()
	cs := newScenario(5).commits(500)
	last := appendAll(t, store, cs)
	// A snapshot claiming the head, with an empty state, of version 99.
	for _, name := range ModelNames {
		m, _ := newModel(name)
		state, _ := m.MarshalState()
		if err := writeSnapshot(dir, snapshot{Model: name, Version: 99, Position: last, State: json.RawMessage(state)}); err != nil {
			t.Fatal(err)
		}
	}
	r, stop := newRunner(t, store, Options{Dir: dir})
	waitFor(t, r, last)
	sameDigests(t, "after a version change", runnerDigests(t, r), digests(t, foldAll(t, envelopes(t, cs, 0))))
	stop()
	// Stop saved the current version.
	snap, ok, err := readSnapshot(dir, QuotaName)
	if err != nil || !ok || snap.Version != NewQuotaModel().Version() || snap.Position != last {
		t.Fatalf("snapshot after stop: %+v %v", snap, err)
	}
	if _, err := os.Stat(snapshotPath(dir, PendingName)); err != nil {
		t.Fatal(err)
	}
}

// Right after an append, WaitFor on its position returns once the models show it.
func TestWaitForRightAfterAppend(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	r, stop := newRunner(t, store, Options{})
	defer stop()
	g := newScenario(11)
	for range 20 {
		var sub *genSub
		cs := g.open()
		sub = g.subs[len(g.subs)-1]
		pos := appendAll(t, store, cs)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.WaitFor(ctx, pos, QuotaName)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Quota(sub.id, g.now); !ok {
			t.Fatal("WaitFor returned before the quota showed the new subscription")
		}
		waitFor(t, r, pos)
		if _, ok := r.SubscriptionExpiries(sub.id, g.now); !ok {
			t.Fatal("WaitFor returned before the expiries showed the new subscription")
		}
	}
	// A position never reached: WaitFor ends with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(ctx, 1<<40); err != context.DeadlineExceeded {
		t.Fatalf("WaitFor beyond the head: %v", err)
	}
	if err := r.WaitFor(ctx, 1, "nope"); err == nil {
		t.Fatal("WaitFor on an unknown model")
	}
}

// AsOf an instant equals the live models as they were at that instant.
func TestAsOfEqualsLiveAtThatInstant(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	r, stop := newRunner(t, store, Options{})
	defer stop()
	g := newScenario(13)
	type mark struct {
		at      time.Time
		pos     uint64
		digests map[string]string
	}
	var marks []mark
	for range 4 {
		pos := appendAll(t, store, g.commits(300))
		waitFor(t, r, pos)
		at := time.Now() // not before the commits just folded were recorded
		marks = append(marks, mark{at, pos, runnerDigests(t, r)})
		// The next commits are recorded strictly after the mark: the log's clock is this
		// process's, so once it has passed the mark, anything appended is later.
		for !time.Now().After(at) {
			runtime.Gosched()
		}
	}
	for _, m := range marks {
		ms, err := AsOf(context.Background(), store, m.at)
		if err != nil {
			t.Fatal(err)
		}
		if ms.Position != m.pos {
			t.Fatalf("as of %s: position %d, want %d", m.at, ms.Position, m.pos)
		}
		sameDigests(t, "as of", digests(t, ms), m.digests)
		for _, name := range ModelNames {
			var j, c bytesCounter
			if err := ms.ExportJSON(&j, name, g.now); err != nil || j == 0 {
				t.Fatalf("%s JSON export: %v", name, err)
			}
			if err := ms.ExportCSV(&c, name, g.now); err != nil || c == 0 {
				t.Fatalf("%s CSV export: %v", name, err)
			}
		}
	}
	if ms, err := AsOf(context.Background(), store, time.Time{}); err != nil || ms.Position != 0 || ms.Quota.Len() != 0 {
		t.Fatalf("as of the zero time: %v", err)
	}
}

type bytesCounter int

func (b *bytesCounter) Write(p []byte) (int, error) { *b += bytesCounter(len(p)); return len(p), nil }

// An event that cannot be read (not an unknown type: a payload that does not decode) stops
// the fold there, visibly behind, instead of leaving the totals silently wrong; events of
// an unknown type are skipped.
func TestAnUnreadableEventStopsTheFold(t *testing.T) {
	e, store := startStore(t, t.TempDir())
	defer e.Close()
	r, stop := newRunner(t, store, Options{RetryDelay: 10 * time.Millisecond})
	defer stop()
	g := newScenario(17)
	good := appendAll(t, store, g.commits(20))
	unknown, err := store.Append(context.Background(), "order-"+uuid.NewString(), eventstore.NoStream,
		eventstore.EventData{ID: uuid.New(), Type: "SomethingNew", SchemaVersion: 1, Payload: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, unknown.Position)
	if good >= unknown.Position {
		t.Fatal("the unknown event did not land after the scenario")
	}
	bad, err := store.Append(context.Background(), "subscription-"+uuid.NewString(), eventstore.NoStream,
		eventstore.EventData{ID: uuid.New(), Type: "SpaceAdded", SchemaVersion: 1, Payload: []byte(`{"gb":"two"}`)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(ctx, bad.Position); err != context.DeadlineExceeded {
		t.Fatalf("the fold went past an unreadable event: %v", err)
	}
	for _, st := range r.Status(context.Background()) {
		if st.Position != unknown.Position || st.Lag == 0 {
			t.Fatalf("%s at %d (lag %d), want stopped at %d, behind", st.Name, st.Position, st.Lag, unknown.Position)
		}
	}
}
