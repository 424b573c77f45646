// Command orderbench measures orderd: concurrent clients run full order flows (open a
// subscription, request space, toggle co-termination, checkout, payment method, confirm,
// pay) over HTTP and it reports commands/s and latency percentiles. --raw adds, in the same
// run, the disk's one-writer durable rate (raw publishes to a JetStream server that fsyncs
// every write, SyncAlways) and the event store's own durable appends (group commit), as the
// floor the API is built on. --prefill fills a stopped orderd's data folder first.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/cli"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orderbench:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "http://127.0.0.1:8080", "orderd's base URL; several, comma-separated, are replicas of one deployment, and each flow's steps alternate them")
	data := flag.String("data", "./data", "orderd's data `folder`: tokens are signed with its development key; --prefill writes into it")
	keyFile := flag.String("key", "", "PEM `file` of the Ed25519 private key to sign tokens with, instead of the data folder's")
	clients := flag.Int("clients", 32, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "how long to run the flows")
	raw := flag.Bool("raw", false, "also measure raw durable publishes (SyncAlways) and the store's durable appends (group commit) in a temporary folder")
	smtpListen := flag.String("smtp-listen", "", "run an SMTP server at this `address` for orderd's mailer (orderd --smtp-host/--smtp-port, --smtp-tls none) and report the time from each command's answer to its email's acceptance")
	prefill := flag.Int("prefill", 0, "write about this many events into --data with relaxed sync, then exit (orderd must be stopped)")
	cluster := flag.Bool("cluster", false, "run a 3-node NATS cluster (streams with 3 replicas) and two orderd replicas in this process, and measure flows, raw R3 publishes and store appends on it, and a role's fail-over")
	leaseTTL := flag.Duration("lease-ttl", app.DefaultLeaseTTL, "with --cluster: the replicas' --lease-ttl")
	version := flag.Bool("version", false, "print the build and exit")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: orderbench [flags]\n\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *version {
		fmt.Println(cli.Version("orderbench"))
		return nil
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "orderbench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	if *cluster {
		return clusterBench(*clients, *duration, *leaseTTL)
	}
	if *prefill > 0 {
		return prefillEvents(*data, *prefill, *clients)
	}
	keyPath := *keyFile
	if keyPath == "" {
		keyPath = tokens.DevKeyFile(*data)
	}
	key, err := tokens.LoadPrivateKey(keyPath)
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	var emails *emailClock
	if *smtpListen != "" {
		if emails, err = startEmailClock(*smtpListen); err != nil {
			return err
		}
	}
	fmt.Printf("flows: %d clients for %s against %s\n", *clients, *duration, *url)
	cmds, err := flows(strings.Split(*url, ","), key, *clients, *duration, emails)
	if err != nil {
		return err
	}
	if emails != nil {
		emails.report(3 * time.Second)
	}
	if *raw {
		return compareRaw(*clients, *duration, cmds)
	}
	return nil
}

// compareRaw measures, after the flows' cmds commands/s, the disk's one-writer durable rate
// and the store's own appends, and sets the three side by side.
func compareRaw(clients int, duration time.Duration, cmds float64) error {
	fmt.Printf("\nraw durable publishes: %d clients for %s, one 256 B message each, expected last sequence per subject, "+
		"JetStream with SyncAlways (an fsync per message) in a temporary folder\n", clients, duration)
	rawRate, err := rawPublishes(clients, duration)
	if err != nil {
		return err
	}
	fmt.Printf("\nstore appends: %d clients for %s, one event per append, embedded store default (group commit) in a temporary folder\n", clients, duration)
	storeRate, fsyncs, err := storeAppends(clients, duration)
	if err != nil {
		return err
	}
	fmt.Printf("\nsame run: flow commands/s %.0f = %.2fx the raw one-writer durable rate %.0f/s; "+
		"store appends %.0f/s = %.2fx (%.1f appends per fsync)\n",
		cmds, cmds/rawRate, rawRate, storeRate, storeRate/rawRate, fsyncs)
	return nil
}

type stats struct {
	mu    sync.Mutex
	lat   map[string][]time.Duration
	fails map[string]int
}

func newStats() *stats {
	return &stats{lat: map[string][]time.Duration{}, fails: map[string]int{}}
}

func (s *stats) add(name string, d time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.lat[name] = append(s.lat[name], d)
	} else {
		s.fails[name]++
	}
}

// during runs loop once for each of clients at the same time, each told its number and
// given a context that ends after duration; it answers how long they took in all.
func during(clients int, duration time.Duration, loop func(run context.Context, client int)) time.Duration {
	run, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() { loop(run, c) })
	}
	wg.Wait()
	return time.Since(start)
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// report prints the table and answers the rate of successful calls of all kinds.
func (s *stats) report(elapsed time.Duration, order []string) float64 {
	var all []time.Duration
	fmt.Printf("%-22s %9s %8s %10s %10s %10s %6s\n", "command", "count", "per s", "p50", "p99", "p999", "fail")
	for _, name := range order {
		l := s.lat[name]
		slices.Sort(l)
		all = append(all, l...)
		fmt.Printf("%-22s %9d %8.0f %10s %10s %10s %6d\n", name, len(l), float64(len(l))/elapsed.Seconds(),
			pct(l, .5).Round(time.Microsecond), pct(l, .99).Round(time.Microsecond), pct(l, .999).Round(time.Microsecond), s.fails[name])
	}
	slices.Sort(all)
	fmt.Printf("%-22s %9d %8.0f %10s %10s %10s\n", "ALL", len(all), float64(len(all))/elapsed.Seconds(),
		pct(all, .5).Round(time.Microsecond), pct(all, .99).Round(time.Microsecond), pct(all, .999).Round(time.Microsecond))
	return float64(len(all)) / elapsed.Seconds()
}

var flowSteps = []string{"OpenSubscription", "RequestSpaceIncrease", "ToggleCoTermination", "ProceedToCheckout", "SelectPaymentMethod", "ConfirmOrder", "RegisterPayment"}

func flows(urls []string, key ed25519.PrivateKey, clients int, duration time.Duration, emails *emailClock) (float64, error) {
	op, err := tokens.Mint(key, tokens.RoleOperator, "bench-operator", 24*time.Hour)
	if err != nil {
		return 0, err
	}
	pay, _ := tokens.Mint(key, tokens.RolePayments, "bench-gateway", 24*time.Hour)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients * 2
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for _, url := range urls {
		if res, err := hc.Get(url + "/readyz"); err != nil {
			return 0, fmt.Errorf("orderd at %s: %w", url, err)
		} else {
			res.Body.Close()
		}
	}
	b := &flowBench{urls: urls, hc: hc, key: key, op: op, pay: pay, st: newStats(), emails: emails}
	elapsed := during(clients, duration, func(run context.Context, c int) {
		for i := 0; run.Err() == nil; i++ {
			if b.flow(c, i) {
				b.flowsDone.Add(1)
			}
		}
	})
	rate := b.st.report(elapsed, flowSteps)
	fmt.Printf("full flows: %d (%.1f/s)\n", b.flowsDone.Load(), float64(b.flowsDone.Load())/elapsed.Seconds())
	if e := b.lastErr.Load(); e != nil {
		fmt.Printf("last failure: %s\n", e)
	}
	return rate, nil
}

// flowBench is what the clients of a flows run share.
type flowBench struct {
	urls    []string
	hc      *http.Client
	key     ed25519.PrivateKey
	op, pay string // the operator's and the payment gateway's tokens
	st      *stats
	emails  *emailClock

	flowsDone atomic.Int64
	lastErr   atomic.Value
}

// flow runs client c's flow number i, as an owner of its own, from opening the subscription
// to the payment; it says whether every step succeeded.
func (b *flowBench) flow(c, i int) bool {
	owner := fmt.Sprintf("bench-%s-%d-%d", uuid.NewString()[:8], c, i)
	cu, _ := tokens.Mint(b.key, tokens.RoleCustomer, owner, 24*time.Hour)
	step := c + i
	call := func(name, path, token string, body any) (map[string]any, bool) {
		// Each step to the next replica: a flow meets every replica's cache.
		url := b.urls[step%len(b.urls)]
		step++
		t0 := time.Now()
		m, err := post(b.hc, url+path, token, body)
		b.st.add(name, time.Since(t0), err == nil)
		if err != nil {
			b.lastErr.Store(fmt.Sprintf("%s: %v", name, err))
		}
		return m, err == nil
	}
	year := time.Now().Year() + 1
	sub, ok := call("OpenSubscription", "/v1/subscriptions", b.op, map[string]any{
		"ownerId": owner, "language": "it", "holder": map[string]any{"name": "Bench", "email": "bench@example.com"},
		"services": []any{
			map[string]any{"kind": "base", "quantity": 1, "expiresOn": fmt.Sprintf("%d-03-31", year)},
			map[string]any{"kind": "users", "quantity": 2, "expiresOn": fmt.Sprintf("%d-01-31", year)},
		}})
	if !ok {
		return false
	}
	o, ok := call("RequestSpaceIncrease", "/v1/orders", cu, map[string]any{"subscriptionId": sub["subscriptionId"], "channel": "app"})
	if !ok {
		return false
	}
	id := o["orderId"].(string)
	p := "/v1/orders/" + id
	if _, ok = call("ToggleCoTermination", p+"/co-termination", cu, map[string]any{"enabled": false}); !ok {
		return false
	}
	if _, ok = call("ProceedToCheckout", p+"/checkout", cu, nil); !ok {
		return false
	}
	if _, ok = call("SelectPaymentMethod", p+"/payment-method", cu, map[string]any{"method": "card"}); !ok {
		return false
	}
	conf, ok := call("ConfirmOrder", p+"/confirm", cu, map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "v1"})
	if !ok {
		return false
	}
	b.emails.mark(id, "instructions")
	total := conf["quote"].(map[string]any)["totalCents"]
	if _, ok = call("RegisterPayment", p+"/payments", b.pay, map[string]any{"amountCents": total, "method": "card", "reference": "B-" + id}); !ok {
		return false
	}
	b.emails.mark(id, "receipt")
	return true
}

func post(hc *http.Client, url, token string, body any) (map[string]any, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest("POST", url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%d %s", res.StatusCode, b)
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// rawPublishes measures the disk's one-writer durable rate: a JetStream server that fsyncs
// every message itself (SyncAlways), one after the other in its stream loop, whatever the
// number of clients. This is what every append cost before the store's group commit.
func rawPublishes(clients int, duration time.Duration) (float64, error) {
	dir, err := os.MkdirTemp("", "orderbench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, SyncAlways: true,
		DontListen: true, NoSigs: true})
	if err != nil {
		return 0, err
	}
	go ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return 0, errors.New("raw server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return 0, err
	}
	return publishLoop(context.Background(), js, natsjs.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: natsjs.FileStorage}, clients, duration)
}

// storeAppends measures the event store's durable appends on the embedded default (group
// commit): what the API's commands are built on. It answers appends/s and appends per fsync.
func storeAppends(clients int, duration time.Duration) (float64, float64, error) {
	dir, err := os.MkdirTemp("", "orderbench-store-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir})
	if err != nil {
		return 0, 0, err
	}
	defer emb.Close()
	if !emb.Durable() {
		return 0, 0, errors.New("the store does not fsync its appends")
	}
	store, err := jetstream.Open(context.Background(), emb.Conn, jetstream.Options{})
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	rate, n := appendLoop(store, clients, duration)
	return rate, float64(n) / float64(max(store.Fsyncs(), 1)), nil
}

// prefillEvents writes full unpaid flows (7 events each: open, reserve, request, toggle,
// checkout, method, confirm) through the command handler, relaxed, until about n events.
func prefillEvents(data string, n, workers int) error {
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: filepath.Join(data, "jetstream"), RelaxedSync: true})
	if err != nil {
		return err
	}
	defer emb.Close()
	store, err := jetstream.Open(context.Background(), emb.Conn, jetstream.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	h := command.New(store, command.Options{CacheSize: 1}) // nothing is read twice
	ctx := context.Background()
	const perFlow = 7
	var next atomic.Int64
	flowsWanted := int64(n / perFlow)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			next := func() bool { return next.Add(1) <= flowsWanted }
			for next() {
				if err := prefillFlow(ctx, h); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stop := every(10*time.Second, func() {
		head, _ := store.Head(ctx)
		fmt.Printf("prefill: %d commits after %s\n", head, time.Since(start).Round(time.Second))
	})
	wg.Wait()
	stop()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	head, _ := store.Head(ctx)
	fmt.Printf("prefill: %d flows, log head %d, %s\n", flowsWanted, head, time.Since(start).Round(time.Second))
	return nil
}

// every calls fn each interval until the function it answers is called.
func every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

func prefillFlow(ctx context.Context, h *command.Handler) error {
	meta := command.Meta{CorrelationID: uuid.NewString(), Actor: "prefill", Channel: "panel"}
	sub := uuid.New()
	exp := domain.DateOf(time.Now()).AddMonths(9)
	if _, _, err := h.ExecuteSubscription(ctx, sub, domain.OpenSubscription{
		SubscriptionID: sub, OwnerID: "prefill-" + sub.String()[:8], Language: "it",
		Holder:   domain.Holder{Name: "Prefill", Email: "prefill@example.com"},
		Services: []domain.Service{{Kind: "base", Quantity: 1, ExpiresOn: exp}, {Kind: "users", Quantity: 1, ExpiresOn: exp.AddMonths(-3)}},
	}, meta, nil); err != nil {
		return err
	}
	id, _, _, err := h.OpenOrder(ctx, sub, domain.RequestSpaceIncrease{GB: 1, Channel: "panel"}, meta)
	if err != nil {
		return err
	}
	for _, c := range []domain.OrderCommand{
		domain.ToggleCoTermination{Enabled: false}, domain.ProceedToCheckout{}, domain.SelectPaymentMethod{Method: "bank-transfer"},
		domain.ConfirmOrder{AcceptGeneralConditions: true, ApproveUnfairTerms: true, AcknowledgePrivacy: true, TermsVersion: "v1"},
	} {
		if _, _, err := h.ExecuteOrder(ctx, id, c, meta, nil); err != nil {
			return err
		}
	}
	return nil
}
