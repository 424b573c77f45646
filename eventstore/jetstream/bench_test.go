package jetstream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/eventstore"
)

// Every store figure is measured beside the raw JetStream figure for the same work in the
// same run (raw = plain publishes or consumers on a stream "RAW"), since this machine is
// too noisy for figures from different runs to be compared.

const benchPayloadSize = 256

func benchPayload() []byte {
	p := []byte(`{"orderId":"` + uuid.NewString() + `","gb":1,"note":"`)
	for len(p) < benchPayloadSize-2 {
		p = append(p, 'x')
	}
	return append(p, '"', '}')
}

func benchEvent() eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "SpaceIncreaseRequested", SchemaVersion: 1, Payload: benchPayload(),
		Metadata: eventstore.Metadata{CorrelationID: uuid.NewString(), Actor: "customer:42", Channel: "panel"}}
}

type benchEnv struct {
	e   *Embedded
	s   *Store
	raw jetstream.Stream
	js  jetstream.JetStream
}

func newBenchEnv(b *testing.B, relaxed bool) *benchEnv {
	b.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Dir: b.TempDir(), RelaxedSync: relaxed})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	ctx := context.Background()
	s, err := Open(ctx, e.Conn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	js, _ := jetstream.New(e.Conn)
	raw, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Storage: jetstream.FileStorage, AllowDirect: true})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{e: e, s: s, raw: raw, js: js}
}

// rawBody is a message of the size the store writes for one bench event.
func rawBody() []byte {
	body, _ := encodeCommitV1([]eventstore.EventData{benchEvent()})
	return body
}

// parallel runs n operations over w goroutines, each with its own index, and reports
// events/s.
func parallel(b *testing.B, w int, op func(writer int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, w)
	b.ResetTimer()
	start := time.Now()
	for i := range w {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
}

// BenchmarkAppend: one event per commit, each writer on its own stream with Exact
// versions and their commits' positions (ExactAt), as the command path does; raw is a plain sync js.Publish of a same-size message.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []struct {
		name    string
		relaxed bool
	}{{"durable", false}, {"relaxed", true}} {
		for _, w := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/writers=%d/store", mode.name, w), func(b *testing.B) {
				env := newBenchEnv(b, mode.relaxed)
				streams := make([]string, w)
				next := make([]eventstore.Expected, w)
				for i := range streams {
					streams[i] = eventstore.StreamName("order", uuid.New())
					next[i] = eventstore.NoStream
				}
				evs := make([]eventstore.EventData, 1024)
				for i := range evs {
					evs[i] = benchEvent()
				}
				var n atomic.Int64
				parallel(b, w, func(i int) error {
					ev := evs[n.Add(1)%int64(len(evs))]
					ev.ID = uuid.New()
					r, err := env.s.Append(context.Background(), streams[i], next[i], ev)
					next[i] = eventstore.ExactAt(r.Version, r.Position)
					return err
				})
			})
			b.Run(fmt.Sprintf("%s/writers=%d/raw", mode.name, w), func(b *testing.B) {
				js := newBenchEnv(b, mode.relaxed).js
				if !mode.relaxed {
					// The embedded server leaves fsyncs to the store: raw durable publishes
					// need a server that fsyncs every message itself.
					js = syncAlwaysServer(b)
				}
				body := rawBody()
				parallel(b, w, func(i int) error {
					_, err := js.Publish(context.Background(), "raw."+strconv.Itoa(i), body)
					return err
				})
			})
		}
	}
}

// syncAlwaysServer is a JetStream server that fsyncs every message (SyncAlways) with a
// "raw.>" stream: the disk's one-writer durable rate.
func syncAlwaysServer(b *testing.B) jetstream.JetStream {
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: b.TempDir(), SyncAlways: true,
		DontListen: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	b.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	return js
}

// prefilled is a relaxed-sync server holding n events of n/10 streams, each stream's ten
// commits spread across the whole log (round robin), written with async publishes.
type prefilled struct {
	env     *benchEnv
	streams []string
	events  int
}

var (
	prefillOnce sync.Once
	prefill     *prefilled
	prefillDir  string
)

func benchEvents() int {
	if os.Getenv("BENCH_LARGE") == "1" {
		return 1_000_000
	}
	return 100_000
}

// getPrefilled builds the log once per process: the load and read benchmarks share it.
func getPrefilled(b *testing.B) *prefilled {
	prefillOnce.Do(func() {
		n := benchEvents()
		dir, err := os.MkdirTemp("", "jsbench")
		if err != nil {
			b.Fatal(err)
		}
		prefillDir = dir
		e, err := StartEmbedded(EmbeddedConfig{Dir: dir, RelaxedSync: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		s, err := Open(ctx, e.Conn, Options{})
		if err != nil {
			b.Fatal(err)
		}
		js, _ := jetstream.New(e.Conn, jetstream.WithPublishAsyncMaxPending(1024))
		raw, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
			Storage: jetstream.FileStorage, AllowDirect: true})
		if err != nil {
			b.Fatal(err)
		}
		p := &prefilled{env: &benchEnv{e: e, s: s, raw: raw, js: js}, streams: make([]string, n/10), events: n}
		subjects := make([]string, len(p.streams))
		for i := range p.streams {
			p.streams[i] = eventstore.StreamName("order", uuid.New())
			subjects[i], _ = s.subjectOf(p.streams[i])
		}
		start := time.Now()
		ev := benchEvent()
		for v := range 10 {
			for i := range p.streams {
				ev.ID = uuid.New()
				m := commitMsg(subjects[i], uint64(v), []eventstore.EventData{ev})
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
				// The same message on the raw stream, for the raw figures.
				if _, err := js.PublishMsgAsync(&nats.Msg{Subject: "raw." + subjects[i], Header: m.Header, Data: m.Data}); err != nil {
					b.Fatal(err)
				}
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(5 * time.Minute):
			b.Fatal("prefill did not complete")
		}
		fmt.Fprintf(os.Stderr, "prefilled %d events of %d streams (and the raw copy) in %s\n", n, len(p.streams), time.Since(start).Round(time.Millisecond))
		prefill = p
	})
	if prefill == nil {
		b.Fatal("prefill failed")
	}
	return prefill
}

func TestMain(m *testing.M) {
	code := m.Run()
	if prefill != nil {
		prefill.env.e.Close()
		os.RemoveAll(prefillDir)
	}
	os.Exit(code)
}

func reportLatency(b *testing.B, lat []time.Duration, prefix string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(us(0.50), prefix+"p50-µs")
	b.ReportMetric(us(0.99), prefix+"p99-µs")
}

// BenchmarkLoadStream loads one stream's 10 events among the prefilled log.
func BenchmarkLoadStream(b *testing.B) {
	p := getPrefilled(b)
	ctx := context.Background()
	b.Run(fmt.Sprintf("events=%d/store", p.events), func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			stream := p.streams[rand.IntN(len(p.streams))]
			t0 := time.Now()
			evs, err := p.env.s.ReadStream(ctx, stream, 0)
			lat = append(lat, time.Since(t0))
			if err != nil || len(evs) != 10 {
				b.Fatalf("load %s: %d events, %v", stream, len(evs), err)
			}
		}
		b.StopTimer()
		reportLatency(b, lat, "")
	})
	// raw: the same batched direct get on the raw stream, without decoding.
	b.Run(fmt.Sprintf("events=%d/raw-direct-batch", p.events), func(b *testing.B) {
		nc := p.env.e.Conn
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			subj, _ := p.env.s.subjectOf(p.streams[rand.IntN(len(p.streams))])
			t0 := time.Now()
			inbox := nc.NewRespInbox()
			sub, _ := nc.SubscribeSync(inbox)
			nc.PublishRequest("$JS.API.DIRECT.GET.RAW", inbox, []byte(`{"seq":1,"next_by_subj":"raw.`+subj+`","batch":10}`))
			got := 0
			for {
				m, err := sub.NextMsg(5 * time.Second)
				if err != nil {
					b.Fatal(err)
				}
				if m.Header.Get("Status") != "" {
					break
				}
				got++
			}
			sub.Unsubscribe()
			lat = append(lat, time.Since(t0))
			if got != 10 {
				b.Fatalf("raw load: %d messages", got)
			}
		}
		b.StopTimer()
		reportLatency(b, lat, "")
	})
	// raw: a filtered ordered consumer, the obvious way to read a subject.
	b.Run(fmt.Sprintf("events=%d/raw-ordered-consumer", p.events), func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			subj, _ := p.env.s.subjectOf(p.streams[rand.IntN(len(p.streams))])
			t0 := time.Now()
			c, err := p.env.raw.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"raw." + subj}})
			if err != nil {
				b.Fatal(err)
			}
			batch, err := c.FetchNoWait(10)
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for range batch.Messages() {
				got++
			}
			lat = append(lat, time.Since(t0))
			if got != 10 {
				b.Fatalf("raw consumer load: %d messages", got)
			}
		}
		b.StopTimer()
		reportLatency(b, lat, "")
	})
}

// BenchmarkReadAll replays the whole prefilled log once per iteration.
func BenchmarkReadAll(b *testing.B) {
	p := getPrefilled(b)
	ctx := context.Background()
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N*p.events)/time.Since(start).Seconds(), "events/s")
	}
	b.Run(fmt.Sprintf("events=%d/store-readall", p.events), func(b *testing.B) {
		start := time.Now()
		for range b.N {
			var after uint64
			n := 0
			for {
				page, err := p.env.s.ReadAll(ctx, after, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				n += len(page)
				after = page[len(page)-1].Position
			}
			if n != p.events {
				b.Fatalf("read %d events", n)
			}
		}
		report(b, start)
	})
	b.Run(fmt.Sprintf("events=%d/store-subscribe", p.events), func(b *testing.B) {
		start := time.Now()
		for range b.N {
			n := 0
			stop := fmt.Errorf("done")
			err := p.env.s.Subscribe(ctx, 0, func(eventstore.Envelope) error {
				if n++; n == p.events {
					return stop
				}
				return nil
			})
			if err != stop {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run(fmt.Sprintf("events=%d/raw-ordered-consumer", p.events), func(b *testing.B) {
		start := time.Now()
		for range b.N {
			c, err := p.env.raw.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := c.Messages(jetstream.PullMaxMessages(batchSize))
			if err != nil {
				b.Fatal(err)
			}
			for range p.events {
				if _, err := it.Next(); err != nil {
					b.Fatal(err)
				}
			}
			it.Stop()
		}
		report(b, start)
	})
}

// BenchmarkSubscriptionLag: 4 writers append as fast as they can (relaxed sync) while one
// subscriber follows live; lag is from the append's acknowledgement to the delivery
// (a delivery that beats the acknowledgement back to its writer counts as 0).
func BenchmarkSubscriptionLag(b *testing.B) {
	const writers = 4
	run := func(b *testing.B, publish func(ctx context.Context, writer int, id uuid.UUID) error,
		subscribe func(ctx context.Context, deliver func(id uuid.UUID)) error) {
		var acked sync.Map // id -> ack time
		lat := make([]time.Duration, 0, b.N)
		var mu sync.Mutex
		delivered := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got int
		subDone := make(chan error, 1)
		ready := make(chan struct{})
		go func() {
			subDone <- subscribe(ctx, func(id uuid.UUID) {
				now := time.Now()
				if id == uuid.Nil {
					close(ready)
					return
				}
				var d time.Duration
				if v, ok := acked.Load(id); ok {
					d = max(now.Sub(v.(time.Time)), 0)
				}
				mu.Lock()
				lat = append(lat, d)
				got++
				if got == b.N {
					close(delivered)
				}
				mu.Unlock()
			})
		}()
		<-ready
		parallel(b, writers, func(w int) error {
			id := uuid.New()
			if err := publish(ctx, w, id); err != nil {
				return err
			}
			acked.LoadOrStore(id, time.Now())
			return nil
		})
		select {
		case <-delivered:
		case err := <-subDone:
			b.Fatal(err)
		case <-time.After(time.Minute):
			b.Fatal("not every event was delivered")
		}
		mu.Lock()
		reportLatency(b, lat, "lag-")
		mu.Unlock()
	}
	b.Run("store", func(b *testing.B) {
		env := newBenchEnv(b, true)
		streams := make([]string, writers)
		for i := range streams {
			streams[i] = eventstore.StreamName("order", uuid.New())
		}
		body := benchPayload()
		run(b, func(ctx context.Context, w int, id uuid.UUID) error {
			_, err := env.s.Append(ctx, streams[w], eventstore.Any,
				eventstore.EventData{ID: id, Type: "Lag", SchemaVersion: 1, Payload: body})
			return err
		}, func(ctx context.Context, deliver func(uuid.UUID)) error {
			head, _ := env.s.Head(ctx)
			deliver(uuid.Nil)
			return env.s.Subscribe(ctx, head, func(e eventstore.Envelope) error { deliver(e.ID); return nil })
		})
	})
	b.Run("raw", func(b *testing.B) {
		env := newBenchEnv(b, true)
		body := rawBody()
		run(b, func(ctx context.Context, w int, id uuid.UUID) error {
			m := &nats.Msg{Subject: "raw." + strconv.Itoa(w), Data: body, Header: nats.Header{}}
			m.Header.Set("Id", id.String())
			_, err := env.js.PublishMsg(ctx, m)
			return err
		}, func(ctx context.Context, deliver func(uuid.UUID)) error {
			c, err := env.raw.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
			if err != nil {
				return err
			}
			it, err := c.Messages(jetstream.PullMaxMessages(batchSize))
			if err != nil {
				return err
			}
			defer it.Stop()
			deliver(uuid.Nil)
			for {
				m, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					return err
				}
				id, _ := uuid.Parse(m.Headers().Get("Id"))
				deliver(id)
			}
		})
	})
}
