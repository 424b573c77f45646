package audit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/projections"
)

// orderdStandin serves what orderd serves to an auditor: GET /v1/projections from a live
// Runner (through alter, when set) and the real audit endpoints over the same store.
type orderdStandin struct {
	mu    sync.Mutex
	alter func([]projections.ModelStatus)
}

func (o *orderdStandin) serve(t *testing.T, store eventstore.Store, r *projections.Runner) *httptest.Server {
	mux := http.NewServeMux()
	audit.NewAPI(store, nil).Register(mux)
	mux.HandleFunc("GET /v1/projections", func(w http.ResponseWriter, req *http.Request) {
		st := r.Status(req.Context())
		o.mu.Lock()
		if o.alter != nil {
			o.alter(st)
		}
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"models": st})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func (o *orderdStandin) set(alter func([]projections.ModelStatus)) {
	o.mu.Lock()
	o.alter = alter
	o.mu.Unlock()
}

func TestVerifyModelsAgainstTheServerAtItsPositions(t *testing.T) {
	store := embedded(t)
	l := startRunner(t, store)
	snaps := runScenario(t, store, l)
	var o orderdStandin
	srv := o.serve(t, store, l.runner)
	remote, err := audit.NewRemote(srv.URL, "", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(log eventstore.Store) audit.ModelsReport {
		t.Helper()
		reported, err := remote.Projections(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.VerifyModels(testCtx(t), log, reported, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}

	rep := verify(remote.Log())
	if bad := rep.Differing(); len(bad) > 0 || len(rep.Models) != len(projections.ModelNames) || rep.Events == 0 || rep.Skipped != 0 {
		t.Fatalf("an intact server: %+v", rep)
	}

	// The live models stop; the log grows past them. Each model is rebuilt only up to the
	// position the server reports for it, so they still match...
	l.stop()
	stale := l.runner.Status(testCtx(t))
	seed(t, store, 1)
	head, _ := store.Head(testCtx(t))
	if stale[0].Position >= head {
		t.Fatal("the log did not grow")
	}
	// ...even when the models are at different positions (expiry reported as it was earlier).
	behind := append([]projections.ModelStatus(nil), stale...)
	earlier := snaps[3]
	if behind[1].Name != projections.ExpiryName || earlier.digests[projections.ExpiryName] == behind[1].Digest {
		t.Fatalf("expiry did not change after instant 3: %+v", behind)
	}
	behind[1].Position, behind[1].Digest = earlier.position, earlier.digests[projections.ExpiryName]
	o.set(func(st []projections.ModelStatus) { copy(st, behind) })
	for _, log := range []eventstore.Store{remote.Log(), store} {
		if bad := verify(log).Differing(); len(bad) > 0 {
			t.Fatalf("a stopped server behind the log: %v differ", bad)
		}
	}

	// One model's digest altered: that model, and only it, is named.
	for _, name := range projections.ModelNames {
		o.set(func(st []projections.ModelStatus) {
			for i := range st {
				if st[i].Name == name {
					st[i].Digest = strings.Repeat("0", 64)
				}
			}
		})
		rep := verify(remote.Log())
		if bad := rep.Differing(); !slices.Equal(bad, []string{name}) {
			t.Fatalf("%s altered: differing %v\n%+v", name, bad, rep)
		}
	}

	// A model reported at a position other than the one its digest belongs to differs too.
	o.set(func(st []projections.ModelStatus) {
		st[1].Position = head
	})
	if bad := verify(store).Differing(); !slices.Equal(bad, []string{projections.ModelNames[1]}) {
		t.Fatalf("a position moved: differing %v", bad)
	}
	// Missing, unknown, newer-versioned and beyond-the-log models are differences.
	o.set(func(st []projections.ModelStatus) {
		st[0].Name = "forecast"
		st[1].Version++
		st[2].Position = head + 100
	})
	rep = verify(remote.Log())
	if bad := rep.Differing(); len(bad) != 4 {
		t.Fatalf("odd reports: %+v", rep)
	}
}

func TestRemoteLogIsTheStoresLog(t *testing.T) {
	store := embedded(t)
	seed(t, store, 3)
	srv := httptest.NewServer(audit.NewAPI(store, nil).Handler())
	t.Cleanup(srv.Close)
	remote, err := audit.NewRemote(srv.URL+"/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := readLog(t, store)
	got := readLog(t, remote.Log())
	sameEvents(t, want, got, true)
	head, err := remote.Log().Head(testCtx(t))
	if err != nil || head != want[len(want)-1].Position {
		t.Fatalf("head %d, %v", head, err)
	}
	if _, err := remote.Projections(testCtx(t)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("projections on a server without them: %v", err)
	}
	if _, err := audit.NewRemote("localhost:8080", "", nil); err == nil {
		t.Fatal("a URL without a scheme accepted")
	}
}
