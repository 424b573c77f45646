// Command mailer runs the mailer on its own, against an external NATS server: it sends the
// payment instructions and receipts of the orders the relay publishes, and records each
// email sent in the order's history, in the event store (-store, as orderd's --store).
//
//	mailer [flags]              run until SIGINT or SIGTERM
//	mailer deadletters [-json]  list the emails given up
//
// Every flag can also be set by the environment variable shown in -help.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/cli"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/emaillog"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/internal/backoff"
)

func main() {
	os.Exit(exitCode(run(os.Args[1:]), os.Stderr))
}

// exitCode follows the convention of every binary of the product: help asked for exits 0,
// a usage error is said once and exits 2, any other failure exits 1.
func exitCode(err error, stderr io.Writer) int {
	var ue cli.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mailer: %v\nrun 'mailer --help' for the settings\n", err)
		return 2
	default:
		fmt.Fprintln(stderr, "mailer:", err)
		return 1
	}
}

// config is the mailer's settings. Their names are orderd's where they mean the same
// (--nats-url, --store, --mail-from, --smtp-*), with the MAILER_ prefix in the environment.
type config struct {
	natsURL, store, storePrefix, from, outbox, catalogue, metrics string
	nats                                                          cli.NATSCredentials
	smtp                                                          mailer.SMTPConfig
	concurrency, attempts, replicas                               int
}

func settings(c *config) *cli.Settings {
	s := cli.NewSettings("mailer", "MAILER_", "[settings]\n       mailer deadletters [settings]   list the emails given up")
	s.String(&c.natsURL, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated: where the relay publishes the notifications")
	c.nats.Add(s, "MAILER_NATS_PASSWORD")
	s.Int(&c.replicas, "nats-replicas", 1, "replicas of the streams the mailer makes on NATS (its dead letters): orderd's --nats-replicas")
	s.String(&c.store, "store", "", "event store, as orderd's --store: nats://host:4222[,...] or esdb://host:2113?tls=false (default: the --nats-url server)")
	s.String(&c.storePrefix, "store-prefix", "", "KurrentDB only: orderd's --store-prefix")
	s.String(&c.smtp.Host, "smtp-host", "", "SMTP server host; empty writes .eml files to --outbox")
	s.Int(&c.smtp.Port, "smtp-port", 0, "SMTP port; 0: 587 starttls, 465 tls, 25 none")
	s.String(&c.smtp.TLS, "smtp-tls", mailer.TLSStartTLS, "SMTP TLS mode: none, starttls or tls")
	s.String(&c.smtp.Username, "smtp-user", "", "SMTP user name, authenticating when set; the password only from MAILER_SMTP_PASSWORD")
	s.Secret(&c.smtp.Password, "MAILER_SMTP_PASSWORD", "password of --smtp-user")
	s.String(&c.from, "mail-from", "Fatturazione Elettronica <noreply@localhost>", "sender address of the emails")
	s.String(&c.outbox, "outbox", "data/outbox", "folder of .eml files when no SMTP host is set")
	s.String(&c.catalogue, "catalogue", "", "catalogue JSON file, the same as orderd's, for the order rules the email records are decided by; the emails' labels and payment details come from orderd's, in the notifications (default: the embedded one)")
	s.String(&c.metrics, "metrics", "", "address to serve /metrics on, e.g. 127.0.0.1:9102")
	s.Int(&c.concurrency, "concurrency", 16, "emails sent at once")
	s.Int(&c.attempts, "attempts", mailer.DefaultAttempts, "attempts before an email goes to the dead letters")
	return s
}

func parse(args []string, getenv func(string) string) (config, error) {
	var c config
	s := settings(&c)
	if err := s.Parse(args, getenv, os.Stdout); err != nil {
		return c, err
	}
	bad := func(name, format string, a ...any) error {
		return cli.UsageError{Err: fmt.Errorf("%s: %s", s.Name(name), fmt.Sprintf(format, a...))}
	}
	if c.smtp.Port < 0 || c.smtp.Port > 65535 {
		return c, bad("smtp-port", "%d is not a port", c.smtp.Port)
	}
	if c.concurrency < 1 {
		return c, bad("concurrency", "%d is not a positive number", c.concurrency)
	}
	if c.replicas < 1 || c.replicas > 5 {
		return c, bad("nats-replicas", "%d: want 1 to 5 (NATS's limit)", c.replicas)
	}
	if c.attempts < 1 {
		return c, bad("attempts", "%d is not a positive number", c.attempts)
	}
	if c.store == "" {
		c.store = c.natsURL
	}
	if kind, err := open.Kind(c.store); err != nil || kind == open.Embedded {
		return c, bad("store", "%q is neither a nats:// nor an esdb:// URL", c.store)
	}
	return c, nil
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "deadletters" {
		return deadLetters(args[1:])
	}
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Println(cli.Version("mailer"))
		return nil
	}
	c, err := parse(args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := cli.NewLogger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return runMailer(c, log)
}

// runMailer builds the mailer c describes and runs it until SIGINT or SIGTERM.
func runMailer(c config, log *zap.Logger) error {
	cat, err := loadCatalogue(c.catalogue)
	if err != nil {
		return err
	}
	sender, err := newSender(c, log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	creds, err := natsOptions(c.nats)
	if err != nil {
		return err
	}
	nc, err := connect(c.natsURL, log, creds...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, open.Config{URL: c.store, StreamPrefix: c.storePrefix, NATSOptions: creds, Logger: log}, log)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := mailer.New(js, mailer.Config{
		Ledger:      emaillog.New(command.New(store.Store, command.Options{Catalogue: cat, Logger: log.Named("command"), Shared: true})),
		Sender:      sender,
		Replicas:    c.replicas,
		From:        c.from,
		Attempts:    c.attempts,
		Concurrency: c.concurrency,
		Logger:      log,
		Registerer:  reg,
	})
	if err != nil {
		return fmt.Errorf("--mail-from (MAILER_MAIL_FROM): %w", err)
	}
	if c.metrics != "" {
		defer serveMetrics(c.metrics, reg, log)()
	}
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("mailer stopped")
	return nil
}

// loadCatalogue is the catalogue in the file at path, or the embedded one when path is empty.
func loadCatalogue(path string) (*domain.Catalogue, error) {
	if path == "" {
		return domain.DefaultCatalogue(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--catalogue (MAILER_CATALOGUE): %w", err)
	}
	cat, err := domain.ParseCatalogue(b)
	if err != nil {
		return nil, fmt.Errorf("--catalogue (MAILER_CATALOGUE): %w", err)
	}
	return cat, nil
}

// newSender sends through SMTP when a host is set, else writes the emails to the outbox.
func newSender(c config, log *zap.Logger) (mailer.Sender, error) {
	if c.smtp.Host == "" {
		o, err := mailer.NewOutbox(c.outbox, log)
		if err != nil {
			return nil, fmt.Errorf("--outbox (MAILER_OUTBOX): %w", err)
		}
		log.Info("no SMTP host set: emails are written to the outbox", zap.String("dir", c.outbox))
		return o, nil
	}
	s, err := mailer.NewSMTPSender(c.smtp)
	if err != nil {
		return nil, fmt.Errorf("SMTP settings (--smtp-*, MAILER_SMTP_*): %w", err)
	}
	log.Info("sending through SMTP", zap.String("host", c.smtp.Host), zap.Int("port", c.smtp.Port), zap.String("tls", c.smtp.TLS))
	return s, nil
}

// serveMetrics serves reg's metrics at addr until the function it answers is called. A
// metrics server that fails is logged and the mailer goes on: emails matter more.
func serveMetrics(addr string, reg *prometheus.Registry, log *zap.Logger) (stop func()) {
	srv := &http.Server{Addr: addr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.String("addr", addr), zap.Error(err))
		}
	}()
	return func() { _ = srv.Close() }
}

// openStore opens the event store, waiting for it while it is not up yet (as for NATS).
func openStore(ctx context.Context, sc open.Config, log *zap.Logger) (*open.Opened, error) {
	bo := backoff.New(backoff.Policy{Min: time.Second, Max: 30 * time.Second})
	for {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		store, err := open.Open(octx, sc)
		cancel()
		if err == nil {
			return store, nil
		}
		log.Warn("waiting for the event store", zap.String("store", cli.Redact(sc.URL)), zap.Error(err))
		if backoff.Sleep(ctx, bo.Next()) != nil {
			return nil, fmt.Errorf("--store (MAILER_STORE): %w", err)
		}
	}
}

// connect keeps trying in the background when the server is not up yet: the mailer waits,
// says so, and tries again with a delay that doubles up to 30 s.
func connect(url string, log *zap.Logger, creds ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("spaceorders-mailer"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(backoff.Policy{Min: 250 * time.Millisecond, Max: 30 * time.Second}.Delay),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("cannot reach NATS: trying again", zap.String("url", cli.Redact(url)), zap.Error(err))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", zap.Error(err)) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrl())) })},
		creds...)...)
	if err != nil {
		return nil, fmt.Errorf("--nats-url (MAILER_NATS_URL): %w", err)
	}
	if !nc.IsConnected() {
		log.Warn("cannot reach NATS yet: the mailer waits for it, trying again with backoff", zap.String("url", cli.Redact(url)))
	}
	return nc, nil
}

// natsOptions are the mailer's NATS credentials as connection options.
func natsOptions(c cli.NATSCredentials) ([]nats.Option, error) {
	opts, err := c.Options()
	if errors.Is(err, cli.ErrUserWithoutPassword) {
		return nil, cli.UsageError{Err: errors.New("--nats-user (MAILER_NATS_USER) and MAILER_NATS_PASSWORD go together: set both or neither")}
	}
	if err != nil {
		return nil, fmt.Errorf("--nats-nkey-seed (MAILER_NATS_NKEY_SEED): %w", err)
	}
	return opts, nil
}

func deadLetters(args []string) error {
	var (
		url    string
		creds  cli.NATSCredentials
		asJSON bool
	)
	s := cli.NewSettings("mailer deadletters", "MAILER_", "[settings]")
	s.String(&url, "nats-url", nats.DefaultURL, "NATS server URL(s), comma-separated")
	creds.Add(s, "MAILER_NATS_PASSWORD")
	s.Bool(&asJSON, "json", false, "print JSON, one dead letter per line")
	if err := s.Parse(args, os.Getenv, os.Stdout); err != nil {
		return err
	}
	opts, err := natsOptions(creds)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("spaceorders-mailer-deadletters")}, opts...)...)
	if err != nil {
		return fmt.Errorf("--nats-url (MAILER_NATS_URL): %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dls, err := mailer.ListDeadLetters(ctx, js, "")
	if err != nil {
		return err
	}
	return PrintDeadLetters(os.Stdout, dls, asJSON)
}

// PrintDeadLetters writes dead letters as a table or as JSON lines.
func PrintDeadLetters(w interface{ Write([]byte) (int, error) }, dls []mailer.DeadLetter, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range dls {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tFAILED AT\tTYPE\tEVENT\tORDER\tATTEMPTS\tERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.FailedAt.Format(time.RFC3339), d.Type,
			d.EventID, d.OrderID, d.Attempts, d.Error)
	}
	fmt.Fprintf(tw, "%d dead letter(s)\n", len(dls))
	return tw.Flush()
}
