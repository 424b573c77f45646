package projections

import (
	"context"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
)

// On KurrentDB (here its STAND-IN, which places every event of a commit at its own
// position, as the server does) read-your-writes waits for the position the append
// answered: the runner must checkpoint each commit at exactly that value, for commits of
// several events too, and the models must end as a fold of the same commits does.
func TestReadYourWritesOnKurrentDBStandin(t *testing.T) {
	conn, stop := standin.Start()
	defer stop()
	store, err := kurrentdb.Open(context.Background(), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r, stopRunner := newRunner(t, store, Options{})
	defer stopRunner()
	g := newScenario(5)
	cs := g.commits(120)
	multi := 0
	for _, c := range cs {
		if len(c.events) > 1 {
			multi++
		}
		pos := appendAll(t, store, []commit{c})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := r.WaitFor(ctx, pos)
		cancel()
		if err != nil {
			t.Fatalf("WaitFor %d after a commit of %d events: %v", pos, len(c.events), err)
		}
		for _, st := range r.Status(context.Background()) {
			if st.Position != pos || st.Lag != 0 {
				t.Fatalf("%s at %d (lag %d) after the append answered %d", st.Name, st.Position, st.Lag, pos)
			}
		}
	}
	if multi == 0 {
		t.Fatal("the scenario wrote no commit of several events")
	}
	sameDigests(t, "folded from KurrentDB", runnerDigests(t, r), digests(t, foldAll(t, envelopes(t, cs, 0))))
}
