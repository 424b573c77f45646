package command_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/command"
)

// BenchmarkCommand runs one order command after another (co-termination switched back and
// forth, one event each) on an embedded store with relaxed sync, so that what is measured
// is the round trips of a command, not the disk. requests/op counts the messages the
// process sent to the server per command (publishes and requests: its round trips).
//   - warm: the order is in the handler's cache and this process is the store's only writer;
//   - shared: the same, with other writers possible (Options.Shared): the cached state is
//     checked against the stream's last version first;
//   - cold: the handler's cache holds one order and commands go round 200 orders, so every
//     command loads its order (about b.N/200 events) from the stream.
//
// BenchmarkOpenOrder opens a subscription and an order on it per operation: new streams.
func BenchmarkCommand(b *testing.B) {
	for _, mode := range []struct {
		name   string
		opts   command.Options
		orders int
	}{
		{"warm", command.Options{}, 2},
		{"shared", command.Options{Shared: true}, 2},
		{"cold", command.Options{CacheSize: 1}, 200},
	} {
		b.Run(mode.name, func(b *testing.B) {
			emb, store := jstest.Start(b, jstest.Relaxed)
			h := command.New(store, mode.opts)
			var orders []uuid.UUID
			for range mode.orders {
				sub := uuid.New()
				next := domain.DateOf(time.Now()).AddMonths(6)
				if _, _, err := h.ExecuteSubscription(b.Context(), sub, domain.OpenSubscription{
					SubscriptionID: sub, OwnerID: "cust", Holder: domain.Holder{Name: "Mario", Email: "m@example.com"}, Language: "it",
					Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: next}},
				}, meta, nil); err != nil {
					b.Fatal(err)
				}
				id, _, _, err := h.OpenOrder(b.Context(), sub, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta)
				if err != nil {
					b.Fatal(err)
				}
				orders = append(orders, id)
			}
			sent := emb.Conn.Stats().OutMsgs
			b.ResetTimer()
			for i := range b.N {
				n := len(orders)
				cmd := domain.ToggleCoTermination{Enabled: i/n%2 == 1}
				if res, _, err := h.ExecuteOrder(b.Context(), orders[i%n], cmd, meta, nil); err != nil || !res.Appended {
					b.Fatal(fmt.Sprint(res, err))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(emb.Conn.Stats().OutMsgs-sent)/float64(b.N), "requests/op")
		})
	}
}

func BenchmarkOpenOrder(b *testing.B) {
	emb, store := jstest.Start(b, jstest.Relaxed)
	h := command.New(store, command.Options{})
	next := domain.DateOf(time.Now()).AddMonths(6)
	sent := emb.Conn.Stats().OutMsgs
	for b.Loop() {
		sub := uuid.New()
		if _, _, err := h.ExecuteSubscription(b.Context(), sub, domain.OpenSubscription{
			SubscriptionID: sub, OwnerID: "cust", Holder: domain.Holder{Name: "Mario", Email: "m@example.com"}, Language: "it",
			Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: next}},
		}, meta, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := h.OpenOrder(b.Context(), sub, domain.RequestSpaceIncrease{GB: 1, Channel: "app"}, meta); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(emb.Conn.Stats().OutMsgs-sent)/float64(b.N), "requests/op")
}
