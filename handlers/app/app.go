// Package app assembles the whole product from a Config — event store, command handler,
// process manager, read models, relay, mailer, sweeper, HTTP API — so that orderd and
// tests start the same thing.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/cli"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/console"
	"github.com/einvoice/spaceorders/handlers/emaillog"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/lease"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/relay"
	"github.com/einvoice/spaceorders/handlers/supervise"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// App is the running product. Its parts are exported so that wiring code can add others
// (projection queries through API.Mount, the relay and the mailer through Go) before Start.
type App struct {
	Config Config
	Log    *zap.Logger
	// Embedded is the in-process NATS server, nil when --store and --nats-url name others.
	Embedded *jetstream.Embedded
	Store    eventstore.Store
	// NATS is the connection of the notifications and of the idempotency keys.
	NATS        *nats.Conn
	Catalogue   *domain.Catalogue
	Commands    *command.Handler
	Purchases   *command.Purchases
	Projections *projections.Runner
	Relay       *relay.Relay
	// Leases give the roles done once per deployment (relay, sweeper) to one replica.
	Leases *lease.Leases
	// Mailer is the in-process mailer, nil with --mailer=false.
	Mailer   *mailer.Mailer
	API      *httpapi.Server
	Registry *prometheus.Registry
	// DevKeyFile is the development signing key's file, "" when keys are configured.
	DevKeyFile string
	// Outbox is the folder the in-process mailer writes emails to, "" when it sends by
	// SMTP or does not run.
	Outbox string

	closers []func() error // in the order opened; closed in reverse
	// natsConnect are the credentials of orderd's own NATS connections (--nats-user,
	// --nats-nkey-seed).
	natsConnect []nats.Option

	parts    *supervise.Supervisor
	ln       net.Listener
	srv      *http.Server
	serveErr chan error
	failed   chan error // a fatal failure of a part or of the HTTP server
	// startHead is the log's head when Start ran; caughtUp latches once every read model
	// has folded up to it, so that a restarted orderd is not ready while its models lag.
	startHead atomic.Uint64
	caughtUp  atomic.Bool

	debugAddr string // where pprof listens (--debug-addr), after Start
}

// New opens the store Config names and builds every part; nothing listens yet.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg = cfg.withDefaults()
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry(), serveErr: make(chan error, 1), failed: make(chan error, 1)}
	a.parts = supervise.New(log.Named("supervisor"), a.Registry, supervise.DefaultBackoff)
	abs, _ := filepath.Abs(cfg.DataDir)
	log.Info("data folder", zap.String("dir", abs), zap.Bool("fsync_every_append", !cfg.RelaxedSync))
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	a.Catalogue = domain.DefaultCatalogue()
	if cfg.CatalogueFile != "" {
		b, err := os.ReadFile(cfg.CatalogueFile)
		if err != nil {
			return nil, fmt.Errorf("--catalogue (ORDERD_CATALOGUE): %w", err)
		}
		if a.Catalogue, err = domain.ParseCatalogue(b); err != nil {
			return nil, fmt.Errorf("--catalogue (ORDERD_CATALOGUE) %s: %w", cfg.CatalogueFile, err)
		}
	}
	if ex := a.Catalogue.ShippedPaymentDetails(); len(ex) > 0 {
		log.Warn("the catalogue's payment details are the shipped examples: emails would send them to customers; give --catalogue (ORDERD_CATALOGUE) a file with your own",
			zap.Strings("examples", ex))
	}
	keys, err := a.keys()
	if err != nil {
		return nil, err
	}
	auth, err := tokens.NewVerifier(keys...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data (ORDERD_DATA) %s: %w", cfg.DataDir, err)
	}
	if err := a.openStore(ctx); err != nil {
		a.close()
		return nil, err
	}
	if err := a.checkLog(ctx); err != nil {
		a.close()
		return nil, err
	}
	if err := a.build(ctx, auth); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// build makes the parts over the open store and NATS connection.
func (a *App) build(ctx context.Context, auth *tokens.Verifier) error {
	cfg, log := a.Config, a.Log
	js, err := natsjs.New(a.NATS)
	if err != nil {
		return fmt.Errorf("NATS JetStream: %w", err)
	}
	a.Commands = command.New(a.Store, command.Options{Catalogue: a.Catalogue, Clock: cfg.Clock,
		Logger: log.Named("command"), Registerer: a.Registry, Shared: cfg.sharedStore()})
	a.Purchases = command.NewPurchases(a.Commands, filepath.Join(cfg.DataDir, "checkpoints", "purchases"))
	a.Projections, err = projections.NewRunner(a.Store, projections.Options{
		Dir: filepath.Join(cfg.DataDir, "projections"), Logger: log.Named("projections")})
	if err != nil {
		return fmt.Errorf("--data (ORDERD_DATA): %w", err)
	}

	idem := a.idempotencyBucket(ctx, js)
	var watch func(context.Context) (context.Context, context.CancelFunc)
	if a.Embedded != nil {
		watch = a.Embedded.Watch
	}
	a.API, err = httpapi.New(a.Commands, httpapi.Options{
		Auth: auth, Logger: log.Named("http"), Registerer: a.Registry, Gatherer: a.Registry, Ready: a.ready, Writable: a.writable,
		IdempotencyKV: idem, WatchWrites: watch, Projections: a.Projections, ReadWait: cfg.ReadWait, Clock: cfg.Clock,
		CORSOrigins: corsOrigins(cfg.CORSOrigins),
	})
	if err != nil {
		return err
	}
	if err := a.mountTools(auth); err != nil {
		return err
	}

	a.Registry.MustRegister(newLagCollector(a))
	if err := a.openLeases(ctx, js); err != nil {
		return err
	}
	// Safe on every replica: the process manager's grants are refused a second time by the
	// subscription, and decided on the stream's state (expected versions).
	a.Go("purchases", a.Purchases.Run)
	a.Go("projections", a.Projections.Run)
	a.Relay = relay.New(a.Store, js, relay.Options{Logger: log.Named("relay"), Replicas: cfg.NATSReplicas, Catalogue: a.Catalogue})
	// Once per deployment: two relays would publish every event twice, once de-duplicated
	// within the server's window and once not, past it.
	a.GoLeased("relay", a.Relay.Run)
	if !cfg.NoMailer {
		if a.Mailer, err = a.mailer(js); err != nil {
			return err
		}
		a.Go("mailer", a.Mailer.Run)
	}
	a.Sweep(a.overdue, cfg.SweepInterval)
	return a.goCheckpoints()
}

// idempotencyBucket is the NATS bucket of the idempotency keys, or nil (keys in memory
// only) when the server refuses it.
func (a *App) idempotencyBucket(ctx context.Context, js natsjs.JetStream) natsjs.KeyValue {
	idem, err := httpapi.NewIdempotencyBucket(ctx, js, 24*time.Hour, a.Config.NATSReplicas)
	if err != nil {
		// Commands still work; only a retry after a restart would run again.
		a.Log.Warn("idempotency keys kept in memory only: the NATS server refused their bucket", zap.Error(err))
		return nil
	}
	return idem
}

// mountTools adds the auditors' endpoints and the operators' console to the API.
func (a *App) mountTools(auth *tokens.Verifier) error {
	cfg, log := a.Config, a.Log
	aud := audit.NewAPI(a.Store, log.Named("audit"))
	auditor := []tokens.Role{tokens.RoleAuditor}
	a.API.Mount(httpapi.Route{Method: "GET", Path: "/v1/audit/streams/{stream}", Roles: auditor, Name: "GetAuditStream"},
		http.HandlerFunc(aud.Stream))
	a.API.Mount(httpapi.Route{Method: "GET", Path: "/v1/audit/events", Roles: auditor, Name: "ListAuditEvents"},
		http.HandlerFunc(aud.Events))
	con, err := console.New(console.Options{Auth: auth, Store: a.Store, Projections: a.Projections,
		Catalogue: a.Catalogue, Clock: cfg.Clock, Logger: log.Named("console"),
		CheckpointKeys: func() ([]ed25519.PublicKey, error) { return checkpoint.PublicKeys(cfg.DataDir) }})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	a.API.MountPages(console.Prefix, con)
	return nil
}

// openStore opens the event store --store names and the NATS connection of the
// notifications: the embedded server unless --store or --nats-url names another.
func (a *App) openStore(ctx context.Context) error {
	cfg, log := a.Config, a.Log
	auth, err := cfg.natsAuth()
	if err != nil {
		return err
	}
	a.natsConnect = auth.connect
	// Reaching the servers is bounded (open.ConnectTimeout); creating the events stream on
	// a cluster still electing its leader is waited for longer (jetstream.Ensure).
	s, err := open.Open(ctx, open.Config{
		DataDir: cfg.DataDir, URL: cfg.Store, StreamPrefix: cfg.StorePrefix, RelaxedSync: cfg.RelaxedSync,
		Replicas: cfg.NATSReplicas, EmbeddedNATS: cfg.embeddedNATS(),
		Server:      jetstream.EmbeddedConfig{Listen: cfg.NATSListen, Users: auth.users, NKeys: auth.nkeys, ConnectOptions: auth.connect},
		NATSOptions: a.natsOptions(), Logger: log,
	})
	if err != nil {
		if s, _ := cfg.StoreKind(); s == StoreEmbedded {
			return fmt.Errorf("--data (ORDERD_DATA): %w", err)
		}
		return fmt.Errorf("--store (ORDERD_STORE): %w", err)
	}
	a.closers = append(a.closers, s.Close)
	a.Store, a.Embedded, a.NATS = s.Store, s.Embedded, s.Conn
	switch s.Kind {
	case StoreNATS:
		log.Info("connected to NATS", zap.String("url", s.Conn.ConnectedUrl()))
	case StoreKurrent:
		log.Info("event store: KurrentDB", zap.String("store", cli.Redact(cfg.Store)))
	}
	if cfg.NATSURL != "" {
		cctx, cancel := context.WithTimeout(ctx, open.ConnectTimeout)
		defer cancel()
		if a.NATS, err = a.connect(cctx, cfg.NATSURL); err != nil {
			return fmt.Errorf("--nats-url (ORDERD_NATS_URL): %w", err)
		}
	}
	return nil
}

// natsOptions are the options of a connection to an external NATS server: it keeps
// reconnecting for as long as orderd runs, and says so in the log.
func (a *App) natsOptions() []nats.Option {
	log := a.Log.Named("nats")
	return append([]nats.Option{nats.Name("orderd"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", zap.Error(err)) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrl())) })},
		a.natsConnect...)
}

// connect reaches an external NATS server, and keeps reconnecting for as long as it runs.
func (a *App) connect(ctx context.Context, url string) (*nats.Conn, error) {
	nc, err := jetstream.Connect(ctx, url, a.natsOptions()...)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { nc.Close(); return nil })
	a.Log.Named("nats").Info("connected to NATS", zap.String("url", nc.ConnectedUrl()))
	return nc, nil
}

// mailer builds the in-process mailer: SMTP when a host is set, else the outbox folder.
func (a *App) mailer(js natsjs.JetStream) (*mailer.Mailer, error) {
	cfg := a.Config
	var sender mailer.Sender
	if cfg.SMTPHost != "" {
		s, err := mailer.NewSMTPSender(mailer.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, TLS: cfg.SMTPTLS,
			Username: cfg.SMTPUser, Password: cfg.SMTPPassword})
		if err != nil {
			return nil, fmt.Errorf("--smtp-host, --smtp-port, --smtp-tls (ORDERD_SMTP_*): %w", err)
		}
		sender = s
	} else {
		a.Outbox = filepath.Join(cfg.DataDir, "outbox")
		o, err := mailer.NewOutbox(a.Outbox, a.Log.Named("mailer"))
		if err != nil {
			return nil, fmt.Errorf("--data (ORDERD_DATA): %w", err)
		}
		sender = o
	}
	m, err := mailer.New(js, mailer.Config{Ledger: emaillog.New(a.Commands), Sender: sender, From: cfg.MailFrom, Replicas: cfg.NATSReplicas,
		Logger: a.Log.Named("mailer"), Registerer: a.Registry, Now: cfg.Clock})
	if err != nil {
		return nil, fmt.Errorf("--mail-from (ORDERD_MAIL_FROM): %w", err)
	}
	return m, nil
}

// overdue lists the orders the sweeper has work for, from the pending-payment read model:
// confirmed orders past their last day to pay, and carts untouched for the catalogue's
// days. The decider checks each again before changing it.
func (a *App) overdue(now time.Time) []uuid.UUID {
	return a.Projections.SweepDue(now, a.Catalogue.AbandonDays())
}

func (a *App) keys() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range a.Config.JWTPublicKeys {
		k, err := tokens.LoadPublicKey(f)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key (ORDERD_JWT_PUBLIC_KEYS): %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	a.DevKeyFile = tokens.DevKeyFile(a.Config.DataDir)
	priv, created, err := tokens.LoadOrCreateKey(a.DevKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--data (ORDERD_DATA): development key: %w", err)
	}
	if created {
		a.Log.Info("made a development signing key", zap.String("file", a.DevKeyFile))
	}
	return []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}, nil
}

// Go adds a background part that runs from Start until Shutdown, restarted with backoff
// when it fails (supervise.Fatal stops orderd instead); call it before Start.
func (a *App) Go(name string, run func(context.Context) error) {
	a.parts.Add(name, run)
}

// Sweep expires overdue orders every interval, asking overdue (a pending-payment read
// model's query) which they are. Call it before Start.
func (a *App) Sweep(overdue func(now time.Time) []uuid.UUID, interval time.Duration) {
	s := command.NewSweeper(a.Commands, overdue, interval)
	// Once per deployment: sweepers on several replicas would race for the same orders
	// (safely, by expected versions, but for nothing).
	a.GoLeased("sweeper", func(ctx context.Context) error { s.Run(ctx); return nil })
}

// writable is nil while the embedded store can write (a store elsewhere says so itself).
func (a *App) writable() error {
	if a.Embedded == nil {
		return nil
	}
	return a.Embedded.WriteErr()
}

// ready is the state of each component for /readyz.
func (a *App) ready(ctx context.Context) []httpapi.Check {
	store := httpapi.Check{Name: "store", Ready: true}
	if _, err := a.Store.Head(ctx); err != nil {
		store = httpapi.Check{Name: "store", Detail: err.Error()}
	} else if err := a.writable(); err != nil {
		// A full disk still lets the log be read, but not one command be recorded.
		store = httpapi.Check{Name: "store", Detail: err.Error()}
	}
	checks := []httpapi.Check{store, a.modelsCaughtUp()}
	checks = append(checks, a.roleChecks()...)
	for _, p := range a.parts.Status() {
		c := httpapi.Check{Name: p.Name, Ready: p.State == supervise.Running}
		switch {
		case p.State == supervise.Restarting:
			c.Detail = fmt.Sprintf("failed (%s); restart %d under way", p.LastError, p.Restarts+1)
		case !c.Ready:
			c.Detail = string(p.State)
		case p.Restarts > 0:
			c.Detail = fmt.Sprintf("running since %s after %d restarts; last failure: %s", p.Since.UTC().Format(time.RFC3339), p.Restarts, p.LastError)
		}
		checks = append(checks, c)
	}
	return checks
}

// modelsCaughtUp holds orderd back from ready until every read model has folded the log
// as it stood at start: until then its queries would answer from the past.
func (a *App) modelsCaughtUp() httpapi.Check {
	c := httpapi.Check{Name: "read-models", Ready: true}
	if a.caughtUp.Load() {
		return c
	}
	var behind []string
	head := a.startHead.Load()
	for name, pos := range a.Projections.Positions() {
		if pos < head {
			behind = append(behind, fmt.Sprintf("%s at position %d", name, pos))
		}
	}
	slices.Sort(behind)
	if len(behind) == 0 {
		a.caughtUp.Store(true)
		return c
	}
	c.Ready, c.Detail = false, fmt.Sprintf("catching up with the log's head at start, position %d: %s", head, strings.Join(behind, ", "))
	return c
}

// Done delivers the failure that should stop orderd: a part that cannot be restarted, or
// an HTTP server that stopped serving.
func (a *App) Done() <-chan error { return a.failed }

// Start listens on Config.Addr, serves the API and starts the background parts.
func (a *App) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("--addr (ORDERD_ADDR) %s: %w", a.Config.Addr, err)
	}
	a.ln = ln
	if err := a.startDebug(); err != nil {
		ln.Close()
		return err
	}
	head, err := a.Store.Head(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("event store: %w", err)
	}
	a.startHead.Store(head)
	a.parts.Start(context.WithoutCancel(ctx))
	go func() {
		if err, ok := <-a.parts.Done(); ok {
			a.fail(err)
		}
	}()
	a.srv = &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(a.Log.Named("http")),
	}
	go func() {
		err := a.srv.Serve(ln)
		a.serveErr <- err
		if !errors.Is(err, http.ErrServerClosed) {
			a.fail(fmt.Errorf("HTTP server: %w", err))
		}
	}()
	a.Log.Info("API listening", zap.String("url", a.URL()), zap.String("openapi", a.URL()+"/v1/openapi.json"))
	a.Log.Info("event store and notifications", zap.String("store", a.storeName()), zap.String("nats", a.natsName()))
	switch {
	case a.Config.NoMailer:
		a.Log.Info("mailer not run here (--mailer=false): run cmd/mailer against the NATS server above")
	case a.Outbox != "":
		abs, _ := filepath.Abs(a.Outbox)
		a.Log.Info("no --smtp-host: emails are written as .eml files to the outbox", zap.String("outbox", abs))
	default:
		a.Log.Info("emails sent through SMTP", zap.String("host", a.Config.SMTPHost), zap.String("tls", a.Config.SMTPTLS))
	}
	if a.DevKeyFile != "" {
		a.Log.Info("no --jwt-public-key configured: tokens are signed with the development key, and the API stays on loopback",
			zap.String("key", a.DevKeyFile),
			zap.String("mint a token", fmt.Sprintf("orderctl token --data %s --role <customer|operator|payments|finance|auditor> --sub <subject>", a.Config.DataDir)))
	}
	return nil
}

// fail reports the first fatal failure on Done.
func (a *App) fail(err error) {
	select {
	case a.failed <- err:
	default:
	}
}

func (a *App) storeName() string {
	if a.Config.Store == "" {
		abs, _ := filepath.Abs(filepath.Join(a.Config.DataDir, "jetstream"))
		return "embedded JetStream in " + abs
	}
	return cli.Redact(a.Config.Store)
}

func (a *App) natsName() string {
	if a.Config.NATSURL != "" {
		return cli.Redact(a.Config.NATSURL)
	}
	if a.Embedded != nil {
		if u := a.Embedded.ClientURL(); u != "" {
			return "embedded, reachable at " + u
		}
		return "embedded, in-process only (--nats-listen to reach it)"
	}
	return cli.Redact(a.Config.Store)
}

// Addr is the address the API listens on (after Start).
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is the API's base URL (after Start).
func (a *App) URL() string { return "http://" + a.Addr() }

// Shutdown drains in-flight requests, stops the background parts (the process manager
// keeps its checkpoint) and closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		if err := a.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain HTTP: %w", err))
		}
		if err := <-a.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	a.parts.Stop()
	errs = append(errs, a.close())
	return errors.Join(errs...)
}

func (a *App) close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}
