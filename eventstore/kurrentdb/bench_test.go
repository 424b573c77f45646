package kurrentdb_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
)

// BenchmarkReadAllStandin reads a log of 10,000 events in commits of 1 to 4 through the
// adapter (commit assembly included) from the STAND-IN: a figure for the adapter's own
// cost over gRPC on loopback, not the server's.
func BenchmarkReadAllStandin(b *testing.B) {
	conn, stop := standin.Start()
	defer stop()
	s := open(b, conn)
	defer s.Close()
	n := 0
	for i := 0; n < 10000; i++ {
		k := 1 + i%4
		if _, err := s.Append(context.Background(), eventstore.StreamName("order", uuid.New()), eventstore.NoStream, evs(k, "Bench")...); err != nil {
			b.Fatal(err)
		}
		n += k
	}
	b.ResetTimer()
	for range b.N {
		got := 0
		var after uint64
		for {
			page, err := s.ReadAll(context.Background(), after, 500)
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
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}
