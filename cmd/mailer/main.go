// Command mailer runs the mailer on its own, against an external NATS server: it sends the
// payment instructions and receipts of the orders the relay publishes.
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
	"net/http"
	"os"
	"os/signal"
	"strconv"
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
	"github.com/einvoice/spaceorders/handlers/mailer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mailer:", err)
		os.Exit(1)
	}
}

type config struct {
	natsURL, from, outbox, catalogue, metrics string
	nats                                      natsCreds
	smtp                                      mailer.SMTPConfig
	concurrency, attempts                     int
}

// setting is one flag with its environment variable, so that an error can name both.
type setting struct{ flag, env string }

func (s setting) String() string { return "-" + s.flag + " (" + s.env + ")" }

func parse(fs *flag.FlagSet, args []string) (config, error) {
	var c config
	var port, concurrency, attempts string
	str := func(p *string, name, env, def, usage string) {
		if v, ok := os.LookupEnv(env); ok {
			def = v
		}
		fs.StringVar(p, name, def, usage+" ["+env+"]")
	}
	str(&c.natsURL, "nats", "MAILER_NATS_URL", nats.DefaultURL, "NATS server URL(s), comma-separated")
	c.nats.flags(fs)
	str(&c.smtp.Host, "smtp-host", "MAILER_SMTP_HOST", "", "SMTP server host; empty writes .eml files to -outbox")
	str(&port, "smtp-port", "MAILER_SMTP_PORT", "", "SMTP port (default 587 starttls, 465 tls, 25 none)")
	str(&c.smtp.TLS, "smtp-tls", "MAILER_SMTP_TLS", mailer.TLSStartTLS, "SMTP TLS mode: none, starttls or tls")
	str(&c.smtp.Username, "smtp-user", "MAILER_SMTP_USER", "", "SMTP user name (authentication when set)")
	str(&c.from, "from", "MAILER_FROM", "Fatturazione Elettronica <noreply@localhost>", "sender address")
	str(&c.outbox, "outbox", "MAILER_OUTBOX", "data/outbox", "folder of .eml files when no SMTP host is set")
	str(&c.catalogue, "catalogue", "MAILER_CATALOGUE", "", "catalogue JSON file (default: the embedded one)")
	str(&c.metrics, "metrics", "MAILER_METRICS", "", "address to serve /metrics on, e.g. 127.0.0.1:9102")
	str(&concurrency, "concurrency", "MAILER_CONCURRENCY", "4", "emails sent at once")
	str(&attempts, "attempts", "MAILER_ATTEMPTS", strconv.Itoa(mailer.DefaultAttempts), "attempts before an email goes to the dead letters")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// The password only from the environment: flags show in the process list.
	c.smtp.Password = os.Getenv("MAILER_SMTP_PASSWORD")
	var err error
	if port != "" {
		if c.smtp.Port, err = strconv.Atoi(port); err != nil {
			return c, fmt.Errorf("%s: %q is not a number", setting{"smtp-port", "MAILER_SMTP_PORT"}, port)
		}
	}
	if c.concurrency, err = strconv.Atoi(concurrency); err != nil || c.concurrency < 1 {
		return c, fmt.Errorf("%s: %q is not a positive number", setting{"concurrency", "MAILER_CONCURRENCY"}, concurrency)
	}
	if c.attempts, err = strconv.Atoi(attempts); err != nil || c.attempts < 1 {
		return c, fmt.Errorf("%s: %q is not a positive number", setting{"attempts", "MAILER_ATTEMPTS"}, attempts)
	}
	return c, nil
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "deadletters" {
		return deadLetters(args[1:])
	}
	fs := flag.NewFlagSet("mailer", flag.ContinueOnError)
	c, err := parse(fs, args)
	if err != nil {
		return err
	}
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	cat := domain.DefaultCatalogue()
	if c.catalogue != "" {
		b, err := os.ReadFile(c.catalogue)
		if err != nil {
			return fmt.Errorf("%s: %w", setting{"catalogue", "MAILER_CATALOGUE"}, err)
		}
		if cat, err = domain.ParseCatalogue(b); err != nil {
			return fmt.Errorf("%s: %w", setting{"catalogue", "MAILER_CATALOGUE"}, err)
		}
	}
	var sender mailer.Sender
	if c.smtp.Host != "" {
		if sender, err = mailer.NewSMTPSender(c.smtp); err != nil {
			return fmt.Errorf("SMTP settings (-smtp-*, MAILER_SMTP_*): %w", err)
		}
		log.Info("sending through SMTP", zap.String("host", c.smtp.Host), zap.Int("port", c.smtp.Port), zap.String("tls", c.smtp.TLS))
	} else {
		if sender, err = mailer.NewOutbox(c.outbox, log); err != nil {
			return fmt.Errorf("%s: %w", setting{"outbox", "MAILER_OUTBOX"}, err)
		}
		log.Info("no SMTP host set: emails are written to the outbox", zap.String("dir", c.outbox))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	creds, err := c.nats.options()
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := mailer.New(js, mailer.Config{
		Catalogue:   cat,
		Sender:      sender,
		From:        c.from,
		Attempts:    c.attempts,
		Concurrency: c.concurrency,
		Logger:      log,
		Registerer:  reg,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", setting{"from", "MAILER_FROM"}, err)
	}
	if c.metrics != "" {
		srv := &http.Server{Addr: c.metrics, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server", zap.String("addr", c.metrics), zap.Error(err))
			}
		}()
		defer func() { _ = srv.Close() }()
	}
	if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("mailer stopped")
	return nil
}

// connect keeps trying in the background when the server is not up yet: the mailer waits.
func connect(url string, log *zap.Logger, creds ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("spaceorders-mailer"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", zap.Error(err)) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrl())) })},
		creds...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting{"nats", "MAILER_NATS_URL"}, err)
	}
	return nc, nil
}

// natsCreds are the mailer's NATS credentials: those of a user the server admits, such as
// orderd's embedded server listening beyond loopback (--nats-user, --nats-nkey-seed).
type natsCreds struct{ user, password, seed string }

func (c *natsCreds) flags(fs *flag.FlagSet) {
	str := func(p *string, name, env, usage string) {
		fs.StringVar(p, name, os.Getenv(env), usage+" ["+env+"]")
	}
	str(&c.user, "nats-user", "MAILER_NATS_USER", "NATS user to connect as; the password only from MAILER_NATS_PASSWORD")
	str(&c.seed, "nats-nkey-seed", "MAILER_NATS_NKEY_SEED", "file of a NATS user nkey seed to connect with")
	// The password only from the environment: flags show in the process list.
	c.password = os.Getenv("MAILER_NATS_PASSWORD")
}

func (c natsCreds) options() ([]nats.Option, error) {
	var opts []nats.Option
	if (c.user == "") != (c.password == "") {
		return nil, fmt.Errorf("%s and MAILER_NATS_PASSWORD go together: set both or neither", setting{"nats-user", "MAILER_NATS_USER"})
	}
	if c.user != "" {
		opts = append(opts, nats.UserInfo(c.user, c.password))
	}
	if c.seed != "" {
		o, err := nats.NkeyOptionFromSeed(c.seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", setting{"nats-nkey-seed", "MAILER_NATS_NKEY_SEED"}, err)
		}
		opts = append(opts, o)
	}
	return opts, nil
}

func deadLetters(args []string) error {
	fs := flag.NewFlagSet("mailer deadletters", flag.ContinueOnError)
	var url string
	def := nats.DefaultURL
	if v, ok := os.LookupEnv("MAILER_NATS_URL"); ok {
		def = v
	}
	fs.StringVar(&url, "nats", def, "NATS server URL [MAILER_NATS_URL]")
	var creds natsCreds
	creds.flags(fs)
	asJSON := fs.Bool("json", false, "print JSON, one dead letter per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := creds.options()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("spaceorders-mailer-deadletters")}, opts...)...)
	if err != nil {
		return fmt.Errorf("%s: %w", setting{"nats", "MAILER_NATS_URL"}, err)
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
	return PrintDeadLetters(os.Stdout, dls, *asJSON)
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
	fmt.Fprintln(tw, "SEQ\tFAILED AT\tTYPE\tEVENT\tSTREAM\tATTEMPTS\tERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.FailedAt.Format(time.RFC3339), d.Type,
			d.EventID, d.Stream, d.Attempts, d.Error)
	}
	fmt.Fprintf(tw, "%d dead letter(s)\n", len(dls))
	return tw.Flush()
}
