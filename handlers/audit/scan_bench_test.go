package audit_test

import (
	"os"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/audit"
)

// BenchmarkStartCheck is orderd's start check (audit.ScanGaps) on a log of 100,000 events
// (BENCH_LARGE=1: 1,000,000), one event per commit, the worst case: one message each. It
// compares the JetStream headers-only scan with a check of the same shape over ReadAll,
// which reads and decodes every payload (what a store without a commit scanner costs).
//
//	BENCH_LARGE=1 go test -run '^$' -bench StartCheck -benchtime 1x ./handlers/audit/
func BenchmarkStartCheck(b *testing.B) {
	n := 100_000
	if os.Getenv("BENCH_LARGE") == "1" {
		n = 1_000_000
	}
	store := embedded(b)
	start := time.Now()
	prefill(b, store, n, 1, 10)
	b.Logf("prefill: %d events, one per commit, in %s", n, time.Since(start).Round(time.Millisecond))
	ctx := testCtx(b)
	rate := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/check")
	}
	b.Run("ScanGaps", func(b *testing.B) {
		for b.Loop() {
			streams, err := audit.ScanGaps(ctx, store)
			if err != nil || streams != n/10 {
				b.Fatalf("scan: %d streams, %v", streams, err)
			}
		}
		rate(b)
	})
	b.Run("ReadAllShape", func(b *testing.B) {
		for b.Loop() {
			f := audit.NewGapFinder(true)
			after := uint64(0)
			for {
				page, err := store.ReadAll(ctx, after, audit.PageSize)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				for _, env := range page {
					f.AddEvent(env)
				}
				after = page[len(page)-1].Position
			}
			if d := f.Finish(); d != nil || f.Streams() != n/10 {
				b.Fatalf("shape: %v", d)
			}
		}
		rate(b)
	})
}
