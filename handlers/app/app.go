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
	neturl "net/url"
	"os"
	"path/filepath"
	"sync"
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
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/relay"
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
	API         *httpapi.Server
	Registry    *prometheus.Registry
	// DevKeyFile is the development signing key's file, "" when keys are configured.
	DevKeyFile string
	// Outbox is the folder the in-process mailer writes emails to, "" when it sends by
	// SMTP or does not run.
	Outbox string

	closers []func() error // in the order opened; closed in reverse

	workers  []worker
	ln       net.Listener
	srv      *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	running  sync.Map // worker name -> true while it runs
	serveErr chan error

	debugAddr string // where pprof listens (--debug-addr), after Start
}

type worker struct {
	name string
	run  func(context.Context) error
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
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry(), serveErr: make(chan error, 1)}
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
	keys, err := a.keys()
	if err != nil {
		return nil, err
	}
	auth, err := httpapi.NewAuthenticator(keys...)
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
	if err := a.build(ctx, auth); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// build makes the parts over the open store and NATS connection.
func (a *App) build(ctx context.Context, auth *httpapi.Authenticator) error {
	cfg, log := a.Config, a.Log
	js, err := natsjs.New(a.NATS)
	if err != nil {
		return fmt.Errorf("NATS JetStream: %w", err)
	}
	a.Commands = command.New(a.Store, command.Options{Catalogue: a.Catalogue, Clock: cfg.Clock,
		Logger: log.Named("command"), Registerer: a.Registry})
	a.Purchases = command.NewPurchases(a.Commands, filepath.Join(cfg.DataDir, "checkpoints", "purchases"))
	a.Projections, err = projections.NewRunner(a.Store, projections.Options{
		Dir: filepath.Join(cfg.DataDir, "projections"), Logger: log.Named("projections")})
	if err != nil {
		return fmt.Errorf("--data (ORDERD_DATA): %w", err)
	}

	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	idem, err := httpapi.NewIdempotencyBucket(bctx, js, 24*time.Hour)
	cancel()
	if err != nil {
		// Commands still work; only a retry after a restart would run again.
		log.Warn("idempotency keys kept in memory only: the NATS server refused their bucket", zap.Error(err))
		idem = nil
	}
	a.API, err = httpapi.New(a.Commands, httpapi.Options{
		Auth: auth, Logger: log.Named("http"), Registerer: a.Registry, Gatherer: a.Registry, Ready: a.ready,
		IdempotencyKV: idem, Projections: a.Projections, ReadWait: cfg.ReadWait, Clock: cfg.Clock,
	})
	if err != nil {
		return err
	}
	aud := audit.NewAPI(a.Store, log.Named("audit"))
	auditor := []httpapi.Role{httpapi.RoleAuditor}
	a.API.Mount(httpapi.Route{Method: "GET", Path: "/v1/audit/streams/{stream}", Roles: auditor, Name: "GetAuditStream"},
		http.HandlerFunc(aud.Stream))
	a.API.Mount(httpapi.Route{Method: "GET", Path: "/v1/audit/events", Roles: auditor, Name: "ListAuditEvents"},
		http.HandlerFunc(aud.Events))

	a.Go("purchases", a.Purchases.Run)
	a.Go("projections", a.Projections.Run)
	rel := relay.New(a.Store, js, relay.Options{Logger: log.Named("relay")})
	a.Go("relay", rel.Run)
	if !cfg.NoMailer {
		m, err := a.mailer(js)
		if err != nil {
			return err
		}
		a.Go("mailer", m.Run)
	}
	a.Sweep(a.overdue, cfg.SweepInterval)
	return nil
}

// openStore opens the event store --store names and the NATS connection of the
// notifications: the embedded server unless --store or --nats-url names another.
func (a *App) openStore(ctx context.Context) error {
	cfg, log := a.Config, a.Log
	kind, err := cfg.StoreKind()
	if err != nil {
		return err
	}
	if cfg.embeddedNATS() {
		dir := filepath.Join(cfg.DataDir, "jetstream")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--data (ORDERD_DATA) %s: %w", cfg.DataDir, err)
		}
		a.Embedded, err = jetstream.StartEmbedded(jetstream.EmbeddedConfig{
			Dir: dir, Listen: cfg.NATSListen, RelaxedSync: cfg.RelaxedSync, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("--data (ORDERD_DATA): embedded NATS: %w", err)
		}
		a.closers = append(a.closers, a.Embedded.Close)
		a.NATS = a.Embedded.Conn
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	switch kind {
	case StoreEmbedded:
		// The embedded server has already said whether it fsyncs every write.
		err = a.openJetStream(ctx, a.Embedded.Conn, jetstream.Options{Logger: a.Log, SkipSyncReport: true})
	case StoreNATS:
		var nc *nats.Conn
		if nc, err = a.connect(cctx, cfg.Store); err != nil {
			return fmt.Errorf("--store (ORDERD_STORE): %w", err)
		}
		if err = a.openJetStream(ctx, nc, jetstream.Options{Logger: a.Log}); err != nil {
			return fmt.Errorf("--store (ORDERD_STORE): %w", err)
		}
		a.NATS = nc
	case StoreKurrent:
		var s *kurrentdb.Store
		if s, err = kurrentdb.Open(cctx, cfg.Store, kurrentdb.Options{}); err != nil {
			return fmt.Errorf("--store (ORDERD_STORE): %w", err)
		}
		a.Store = s
		a.closers = append(a.closers, s.Close)
		log.Info("event store: KurrentDB", zap.String("store", redact(cfg.Store)))
	}
	if err != nil {
		return err
	}
	if cfg.NATSURL != "" {
		if a.NATS, err = a.connect(cctx, cfg.NATSURL); err != nil {
			return fmt.Errorf("--nats-url (ORDERD_NATS_URL): %w", err)
		}
	}
	return nil
}

func (a *App) openJetStream(ctx context.Context, nc *nats.Conn, opts jetstream.Options) error {
	s, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		return err
	}
	a.Store = s
	a.closers = append(a.closers, s.Close)
	return nil
}

// connect reaches an external NATS server, and keeps reconnecting for as long as it runs.
func (a *App) connect(ctx context.Context, url string) (*nats.Conn, error) {
	log := a.Log.Named("nats")
	nc, err := jetstream.Connect(ctx, url, nats.Name("orderd"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", zap.Error(err)) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", zap.String("url", nc.ConnectedUrl())) }))
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error { nc.Close(); return nil })
	log.Info("connected to NATS", zap.String("url", nc.ConnectedUrl()))
	return nc, nil
}

// redact hides a password in a URL for the log.
func redact(u string) string {
	if p, err := neturl.Parse(u); err == nil && p.User != nil {
		return p.Redacted()
	}
	return u
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
	m, err := mailer.New(js, mailer.Config{Catalogue: a.Catalogue, Sender: sender, From: cfg.MailFrom,
		Logger: a.Log.Named("mailer"), Registerer: a.Registry, Now: cfg.Clock})
	if err != nil {
		return nil, fmt.Errorf("--mail-from (ORDERD_MAIL_FROM): %w", err)
	}
	return m, nil
}

// overdue lists the confirmed, unpaid orders whose last day to pay is before today, from
// the pending-payment read model; the decider checks each again before expiring it.
func (a *App) overdue(now time.Time) []uuid.UUID {
	today := domain.DateOf(now)
	var ids []uuid.UUID
	q := projections.PendingQuery{Limit: 1000}
	for {
		page, err := a.Projections.PendingPayments(q, now)
		if err != nil {
			a.Log.Warn("sweeper: pending payments", zap.Error(err))
			return ids
		}
		for _, o := range page.Orders {
			// A partly paid order is never expired: the money received stays visible.
			if today.After(o.PayBy) && o.PaidCents == 0 {
				ids = append(ids, o.OrderID)
			}
		}
		if page.NextCursor == "" {
			return ids
		}
		q.Cursor = page.NextCursor
	}
}

func (a *App) keys() ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for _, f := range a.Config.JWTPublicKeys {
		k, err := httpapi.LoadPublicKey(f)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key (ORDERD_JWT_PUBLIC_KEYS): %w", err)
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	a.DevKeyFile = httpapi.DevKeyFile(a.Config.DataDir)
	priv, created, err := httpapi.LoadOrCreateKey(a.DevKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--data (ORDERD_DATA): development key: %w", err)
	}
	if created {
		a.Log.Info("made a development signing key", zap.String("file", a.DevKeyFile))
	}
	return []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)}, nil
}

// Go adds a background part that runs from Start until Shutdown; call it before Start.
func (a *App) Go(name string, run func(context.Context) error) {
	a.workers = append(a.workers, worker{name, run})
}

// Sweep expires overdue orders every interval, asking overdue (a pending-payment read
// model's query) which they are. Call it before Start.
func (a *App) Sweep(overdue func(now time.Time) []uuid.UUID, interval time.Duration) {
	s := command.NewSweeper(a.Commands, overdue, interval)
	a.Go("sweeper", func(ctx context.Context) error { s.Run(ctx); return nil })
}

func (a *App) ready(ctx context.Context) error {
	if _, err := a.Store.Head(ctx); err != nil {
		return fmt.Errorf("event store: %w", err)
	}
	for _, w := range a.workers {
		if _, ok := a.running.Load(w.name); !ok {
			return fmt.Errorf("%s is not running", w.name)
		}
	}
	return nil
}

// Start listens on Config.Addr, serves the API and starts the background parts.
func (a *App) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("--addr (ORDERD_ADDR) %s: %w", a.Config.Addr, err)
	}
	a.ln = ln
	if err := a.startDebug(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	for _, w := range a.workers {
		a.wg.Add(1)
		a.running.Store(w.name, true)
		go func() {
			defer a.wg.Done()
			defer a.running.Delete(w.name)
			if err := w.run(wctx); err != nil && wctx.Err() == nil {
				a.Log.Error("background part stopped", zap.String("part", w.name), zap.Error(err))
			}
		}()
	}
	a.srv = &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(a.Log.Named("http")),
	}
	go func() { a.serveErr <- a.srv.Serve(ln) }()
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

func (a *App) storeName() string {
	if a.Config.Store == "" {
		abs, _ := filepath.Abs(filepath.Join(a.Config.DataDir, "jetstream"))
		return "embedded JetStream in " + abs
	}
	return redact(a.Config.Store)
}

func (a *App) natsName() string {
	if a.Config.NATSURL != "" {
		return redact(a.Config.NATSURL)
	}
	if a.Embedded != nil {
		if u := a.Embedded.ClientURL(); u != "" {
			return "embedded, reachable at " + u
		}
		return "embedded, in-process only (--nats-listen to reach it)"
	}
	return redact(a.Config.Store)
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
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
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
