package audit_test

import (
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/handlers/audit"
)

// Every gap is named, not only the first: missing positions (dense logs only), a stream's
// missing or repeated versions, and the streams a run of missing positions belonged to.
func TestGapFinderNamesEveryGap(t *testing.T) {
	c := func(pos uint64, stream string, first uint64, n int) eventstore.CommitHead {
		return eventstore.CommitHead{Position: pos, Stream: stream, FirstVersion: first, Count: n}
	}
	log := []eventstore.CommitHead{
		c(1, "order-a", 0, 2),
		c(2, "order-b", 0, 1),
		// 3 lost: order-a versions 2..3
		c(4, "order-a", 4, 1),
		c(5, "order-c", 1, 1), // order-c's version 0 was never seen
		c(6, "order-b", 0, 1), // repeats order-b version 0
		// 7 lost, the last commit of its stream
		c(8, "order-b", 1, 1),
	}
	for _, dense := range []bool{true, false} {
		f := audit.NewGapFinder(dense)
		for _, ch := range log {
			f.AddCommit(ch)
		}
		d := f.Finish()
		if d == nil {
			t.Fatal("no gap found")
		}
		var got []string
		for _, g := range d.Gaps {
			got = append(got, g.String())
		}
		want := []string{
			"order-a: versions 2..3 missing, between positions 1 and 4",
			"order-c: versions 0..0 missing, before position 5",
			"order-b: versions 0..0 at position 6 repeat what position 2 holds",
		}
		if dense {
			want = []string{
				// order-c's first version may have been at 3 too.
				"position 3 holds no commit (lost from one of order-a, order-c)",
				"order-a: versions 2..3 missing, between positions 1 and 4",
				"order-c: versions 0..0 missing, before position 5",
				"order-b: versions 0..0 at position 6 repeat what position 2 holds",
				"position 7 holds no commit (the lost commit was the last of its stream, which neither its versions nor the store's index can name)",
			}
		}
		if len(got) != len(want) {
			t.Fatalf("dense %v: gaps\n%q\nwant\n%q", dense, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("dense %v: gap %d is %q, want %q", dense, i, got[i], want[i])
			}
		}
	}
	// The store's index still counts order-b's lost commit: position 7 is named by it.
	f := audit.NewGapFinder(true)
	for _, ch := range log {
		f.AddCommit(ch)
	}
	f.Compare(map[string]uint64{"order-a": 2, "order-b": 4, "order-c": 1})
	if g := f.Finish().Gaps[4]; g.String() != "position 7 holds no commit (lost from order-b)" {
		t.Fatalf("with the index's counts: %v", g)
	}
}

// An intact log has no gap, read through the JetStream headers-only scan and through
// ReadAll on the KurrentDB stand-in, whose positions are offsets and so never dense.
func TestScanGapsFindsNothingInAnIntactLog(t *testing.T) {
	js := embedded(t)
	seed(t, js, 3)
	if !eventstore.HasDensePositions(js) {
		t.Fatal("JetStream positions are dense")
	}
	if n, err := audit.ScanGaps(testCtx(t), js); err != nil || n != 6 {
		t.Fatalf("jetstream: %d streams, %v", n, err)
	}
	conn, stop := standin.Start()
	defer stop()
	kd, err := kurrentdb.Open(testCtx(t), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer kd.Close()
	seed(t, kd, 2)
	if eventstore.HasDensePositions(kd) {
		t.Fatal("KurrentDB positions are not dense")
	}
	if n, err := audit.ScanGaps(testCtx(t), kd); err != nil || n != 4 {
		t.Fatalf("kurrentdb stand-in: %d streams, %v", n, err)
	}
}
