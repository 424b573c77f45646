package projections

import (
	"context"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
)

// The benchmarks share one prefilled store (relaxed sync, multi-event commits): 100,000
// events, or 1,000,000 with BENCH_LARGE=1.
var bench struct {
	once   sync.Once
	dir    string
	e      *jetstream.Embedded
	store  *jetstream.Store
	events int
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.e != nil {
		bench.e.Close()
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

func benchStore(b *testing.B) (*jetstream.Store, int) {
	bench.once.Do(func() {
		n := 100_000
		if os.Getenv("BENCH_LARGE") == "1" {
			n = 1_000_000
		}
		bench.dir, bench.err = os.MkdirTemp("", "projections-bench-")
		if bench.err != nil {
			return
		}
		bench.e, bench.store = startStore(b, bench.dir)
		g := newScenario(99)
		g.fastOrders = true
		start := time.Now()
		for bench.events < n {
			cs := g.commits(min(10_000, n-bench.events))
			appendAll(b, bench.store, cs)
			for _, c := range cs {
				bench.events += len(c.events)
			}
		}
		b.Logf("prefilled %d events in %s", bench.events, time.Since(start).Round(time.Millisecond))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.store, bench.events
}

// BenchmarkRebuild folds the whole prefilled log into each model from zero, beside the
// raw ReadAll rate of the same store in the same run.
func BenchmarkRebuild(b *testing.B) {
	store, _ := benchStore(b)
	ctx := context.Background()
	b.Run("raw-ReadAll", func(b *testing.B) {
		events := 0
		for b.Loop() {
			var pos uint64
			for {
				batch, err := store.ReadAll(ctx, pos, 4096)
				if err != nil {
					b.Fatal(err)
				}
				if len(batch) == 0 {
					break
				}
				events += len(batch)
				pos = batch[len(batch)-1].Position
			}
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	})
	// For comparison: the same log through Subscribe (an ordered consumer) up to the head.
	b.Run("raw-Subscribe", func(b *testing.B) {
		head, err := store.Head(ctx)
		if err != nil {
			b.Fatal(err)
		}
		events := 0
		for b.Loop() {
			sctx, cancel := context.WithCancel(ctx)
			err := store.Subscribe(sctx, 0, func(env eventstore.Envelope) error {
				events++
				if env.Position == head && env.LastInCommit() {
					cancel()
				}
				return nil
			})
			cancel()
			if err != nil && sctx.Err() == nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	})
	for _, name := range append(slices.Clone(ModelNames), "all") {
		b.Run(name, func(b *testing.B) {
			events := 0
			for b.Loop() {
				var models []Model
				if name == "all" {
					ms := NewModels()
					models = []Model{ms.Quota, ms.Expiry, ms.Pending, ms.Lists}
				} else {
					m, _ := newModel(name)
					models = []Model{m}
				}
				_, err := eventstore.ReadCommits(ctx, store, 0, eventstore.DecodeOptions{}, func(c eventstore.Commit) error {
					for _, m := range models {
						applyCommit(m, c)
					}
					events += len(c.Events)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkMemoryPerSubscription loads 100,000 subscriptions (opened, a usage report, a
// block of space) into the quota and expiry models and reports the heap each one takes.
func BenchmarkMemoryPerSubscription(b *testing.B) {
	const n = 100_000
	today := domain.Date{Year: 2025, Month: 3, Day: 1}
	for b.Loop() {
		envs := make([]eventstore.Envelope, 0, 3*n)
		evs := make([]domain.Event, 0, 3*n)
		for i := range n {
			id := uuid.New()
			stream := eventstore.StreamName("subscription", id)
			for j, ev := range []domain.Event{
				domain.SubscriptionOpened{SubscriptionID: id, OwnerID: "cust-" + id.String()[:8],
					Holder: domain.Holder{Name: "Rossi S.r.l.", Email: "amministrazione@rossi.example.com"}, Language: "it", BaseGB: 1, OpenedOn: today,
					Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: today.AddDays(i % 365)}, {Kind: "users", Quantity: 2, ExpiresOn: today.AddDays(200)}}},
				domain.UsageReported{UsedBytes: int64(i) * 1000, ReportedAt: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)},
				domain.SpaceAdded{OrderID: uuid.New(), GB: 1, ValidFrom: today, ValidUntil: today.AddYears(1)},
			} {
				envs = append(envs, eventstore.Envelope{Stream: stream, Position: uint64(3*i + j + 1), Count: 1})
				evs = append(evs, ev)
			}
		}
		for _, name := range []string{QuotaName, ExpiryName} {
			before := heap()
			m, _ := newModel(name)
			for i := range envs {
				m.Apply(envs[i], evs[i])
			}
			after := heap()
			runtime.KeepAlive(m)
			b.ReportMetric(float64(after-before)/n, name+"-bytes/subscription")
		}
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkPendingQuery measures the pending list and summary with 100,000 open orders.
func BenchmarkPendingQuery(b *testing.B) {
	const n = 100_000
	m := NewPendingModel()
	start := time.Date(2024, 6, 1, 0, 0, 0, 0, domain.Rome)
	ids := make([]uuid.UUID, n)
	for i := range n {
		ids[i] = uuid.New()
		confirmedAt := start.Add(time.Duration(i) * 3 * time.Minute)
		m.Apply(eventstore.Envelope{Stream: eventstore.StreamName("order", ids[i])}, domain.OrderConfirmed{
			OrderID: ids[i], SubscriptionID: uuid.New(), OwnerID: "cust", PaymentMethod: methods[i%3],
			Quote: domain.Quote{GB: 1, TotalCents: 3050 + int64(i%7)}, ConfirmedAt: confirmedAt,
			Recipient: domain.Recipient{Name: "Rossi S.r.l."}, PayBy: domain.DateOf(confirmedAt).AddDays(30),
		})
	}
	now := start.Add(n * 3 * time.Minute)
	mid, _ := m.Page(PendingQuery{Limit: 1000}, now)
	cursor := mid.NextCursor
	measure := func(b *testing.B, fn func(i int)) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			t0 := time.Now()
			fn(i)
			lat = append(lat, time.Since(t0))
			i++
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
	b.Run("page-100", func(b *testing.B) {
		measure(b, func(int) {
			if p, _ := m.Page(PendingQuery{Limit: 100}, now); len(p.Orders) != 100 {
				b.Fatal(len(p.Orders))
			}
		})
	})
	b.Run("page-100-method-minage-cursor", func(b *testing.B) {
		measure(b, func(int) {
			if p, _ := m.Page(PendingQuery{Method: domain.MethodPayPal, MinAgeDays: 30, Cursor: cursor, Limit: 100}, now); len(p.Orders) != 100 {
				b.Fatal(len(p.Orders))
			}
		})
	})
	b.Run("summary-cached", func(b *testing.B) {
		measure(b, func(int) { m.Summary(now) })
	})
	b.Run("summary-after-change", func(b *testing.B) {
		measure(b, func(i int) {
			m.Apply(eventstore.Envelope{Stream: eventstore.StreamName("order", ids[i%n])},
				domain.PaymentRegistered{AmountCents: 1, PaidCents: int64(i/n + 1)})
			m.Summary(now)
		})
	})
}
