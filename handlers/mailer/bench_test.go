package mailer_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// BenchmarkConfirmationToSMTP measures the whole way of an order confirmation: append to the
// event store, relay to the notifications stream, mailer (the order's history, render, SMTP
// to a go-smtp server on loopback over the sender's kept connections, the EmailSent record,
// ack). Each iteration appends 1,000 confirmations and waits for the 1,000 emails; latency
// is from just before the append to the SMTP server's acceptance of the DATA. The whole
// product under load (HTTP, read models, payments) is cmd/orderbench --smtp-listen.
//
//	go test -run '^$' -bench ConfirmationToSMTP -benchtime 1x ./handlers/mailer
func BenchmarkConfirmationToSMTP(b *testing.B) {
	for _, c := range []struct {
		name        string
		relaxed     bool
		concurrency int
		every       time.Duration // pause between confirmations; 0 is a burst
	}{
		{"fsync=always/workers=4/burst", false, 4, 0},
		{"fsync=always/workers=16/burst", false, 16, 0},
		{"fsync=relaxed/workers=4/burst", true, 4, 0},
		{"fsync=always/workers=4/paced=200per_s", false, 4, 5 * time.Millisecond},
		{"fsync=always/workers=16/paced=200per_s", false, 16, 5 * time.Millisecond},
	} {
		b.Run(c.name, func(b *testing.B) {
			const n = 1000
			var lat []time.Duration
			var elapsed time.Duration
			for range b.N {
				h := newHarnessSync(b, "", c.relaxed)
				cfg := h.config(h.smtpSender())
				cfg.Concurrency = c.concurrency
				cfg.Logger = nil
				_, stop := h.runMailer(cfg)
				events := make([]eventstore.EventData, n)
				streams := make([]string, n)
				for i := range n {
					ev := confirmed(b, h.cat, fmt.Sprintf("Holder %d", i), "h@example.com", "it", domain.MethodBankTransfer)
					d, err := codec.Encode(uuid.New(), ev, eventstore.Metadata{Actor: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					events[i], streams[i] = d, eventstore.StreamName("order", ev.OrderID)
				}
				sentAt := make(map[string]time.Time, n)
				b.ResetTimer()
				start := time.Now()
				next := start
				for i := range n {
					if c.every > 0 {
						// The offered load's pace (one event every c.every): the
						// scenario, not a wait on a condition.
						time.Sleep(time.Until(next))
						next = next.Add(c.every)
					}
					sentAt[events[i].ID.String()] = time.Now()
					if _, err := h.store.Append(b.Context(), streams[i], eventstore.NoStream, events[i]); err != nil {
						b.Fatal(err)
					}
				}
				got := h.smtp.waitN(b, n, 2*time.Minute)
				b.StopTimer()
				stop()
				last := start
				for _, m := range got {
					id := m.Header.Get("X-Event-Id")
					t0, ok := sentAt[id]
					if !ok {
						b.Fatalf("unknown email %s", id)
					}
					lat = append(lat, m.At.Sub(t0))
					if m.At.After(last) {
						last = m.At
					}
				}
				elapsed += last.Sub(start)
			}
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(pct(0.50), "p50_ms")
			b.ReportMetric(pct(0.99), "p99_ms")
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "emails/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
