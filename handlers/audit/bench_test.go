package audit_test

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
)

// prefill writes n events in commits of perCommit events, spread over streams of
// perStream events, each chained as the command handler chains them.
func prefill(b *testing.B, store eventstore.Store, n, perCommit, perStream int) {
	b.Helper()
	ctx := testCtx(b)
	streams := n / perStream
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range work {
				stream := eventstore.StreamName("order", uuid.New())
				prev := ""
				for v := 0; v < perStream; v += perCommit {
					data := make([]eventstore.EventData, perCommit)
					for i := range data {
						d := eventstore.EventData{ID: uuid.New(), Type: "BenchmarkEventRecorded", SchemaVersion: 1,
							Payload:  fmt.Appendf(nil, `{"orderId":%q,"n":%d,"amountCents":12200,"note":"a payload of about the size of a domain event, with a few fields"}`, stream, v+i),
							Metadata: eventstore.Metadata{Actor: "customer-1", Channel: "panel", CorrelationID: "bench", PrevHash: prev, OccurredAt: time.Now().UTC()}}
						prev = eventstore.Hash(stream, uint64(v+i), d)
						data[i] = d
					}
					expected := eventstore.NoStream
					if v > 0 {
						expected = eventstore.Exact(uint64(v - 1))
					}
					if _, err := store.Append(ctx, stream, expected, data...); err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
				}
			}
		})
	}
	for s := range streams {
		work <- s
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("prefill: %v", err)
	default:
	}
}

// BenchmarkReplay reads a log of 100,000 events (BENCH_LARGE=1: 1,000,000) from the real
// embedded JetStream store three ways: the store's raw ReadAll, the export to JSON lines,
// and verify-chain (every hash recomputed, chains and digest checked).
//
//	go test -run '^$' -bench Replay -benchtime 3x ./handlers/audit/
func BenchmarkReplay(b *testing.B) {
	n := 100_000
	if os.Getenv("BENCH_LARGE") == "1" {
		n = 1_000_000
	}
	store := embedded(b)
	start := time.Now()
	prefill(b, store, n, 10, 50)
	b.Logf("prefill: %d events in commits of 10 in %s", n, time.Since(start).Round(time.Millisecond))
	ctx := testCtx(b)
	rate := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("ReadAll", func(b *testing.B) {
		for b.Loop() {
			got, after := 0, uint64(0)
			for {
				page, err := store.ReadAll(ctx, after, audit.PageSize)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				got += len(page)
				after = page[len(page)-1].Position
			}
			if got != n {
				b.Fatalf("read %d events, want %d", got, n)
			}
		}
		rate(b)
	})
	b.Run("Export", func(b *testing.B) {
		for b.Loop() {
			d, err := audit.Export(ctx, store, io.Discard, nil)
			if err != nil || d.Events != uint64(n) {
				b.Fatalf("export: %v, %v", d, err)
			}
		}
		rate(b)
	})
	b.Run("VerifyChain", func(b *testing.B) {
		for b.Loop() {
			r, err := audit.VerifyStore(ctx, store, nil, nil)
			if err != nil || r.Digest.Events != uint64(n) {
				b.Fatalf("verify: %v, %v", r, err)
			}
		}
		rate(b)
	})
}
