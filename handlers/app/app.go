// Package app assembles the whole product from a Config — embedded store, command
// handler, process manager, HTTP API — so that orderd and tests start the same thing.
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
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
)

// App is the running product. Its parts are exported so that wiring code can add others
// (projection queries through API.Mount, the relay and the mailer through Go) before Start.
type App struct {
	Config    Config
	Log       *zap.Logger
	Embedded  *jetstream.Embedded
	Store     *jetstream.Store
	Commands  *command.Handler
	Purchases *command.Purchases
	API       *httpapi.Server
	Registry  *prometheus.Registry
	// DevKeyFile is the development signing key's file, "" when keys are configured.
	DevKeyFile string

	workers  []worker
	ln       net.Listener
	srv      *http.Server
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	running  sync.Map // worker name -> true while it runs
	serveErr chan error
}

type worker struct {
	name string
	run  func(context.Context) error
}

// New opens the store in cfg.DataDir and builds every part; nothing listens yet.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry(), serveErr: make(chan error, 1)}
	abs, _ := filepath.Abs(cfg.DataDir)
	log.Info("data folder", zap.String("dir", abs), zap.Bool("fsync_every_append", !cfg.RelaxedSync))
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	cat := domain.DefaultCatalogue()
	if cfg.CatalogueFile != "" {
		b, err := os.ReadFile(cfg.CatalogueFile)
		if err != nil {
			return nil, fmt.Errorf("--catalogue (ORDERD_CATALOGUE): %w", err)
		}
		if cat, err = domain.ParseCatalogue(b); err != nil {
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

	storeDir := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data (ORDERD_DATA) %s: %w", cfg.DataDir, err)
	}
	a.Embedded, err = jetstream.StartEmbedded(jetstream.EmbeddedConfig{
		Dir: storeDir, Listen: cfg.NATSListen, RelaxedSync: cfg.RelaxedSync, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	a.Store, err = jetstream.Open(ctx, a.Embedded.Conn, jetstream.Options{Logger: log})
	if err != nil {
		a.Embedded.Close()
		return nil, err
	}
	a.Commands = command.New(a.Store, command.Options{Catalogue: cat, Logger: log.Named("command"), Registerer: a.Registry})
	a.Purchases = command.NewPurchases(a.Commands, filepath.Join(cfg.DataDir, "checkpoints", "purchases"))
	a.API, err = httpapi.New(a.Commands, httpapi.Options{
		Auth: auth, Logger: log.Named("http"), Registerer: a.Registry, Gatherer: a.Registry, Ready: a.ready,
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.Go("purchases", a.Purchases.Run)
	return a, nil
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
	a.Log.Info("API listening", zap.String("url", a.URL()))
	if a.DevKeyFile != "" {
		a.Log.Info("no --jwt-public-key configured: tokens are signed with the development key, and the API stays on loopback",
			zap.String("key", a.DevKeyFile),
			zap.String("mint a token", fmt.Sprintf("orderctl token --data %s --role <customer|operator|payments|finance|auditor> --sub <subject>", a.Config.DataDir)))
	}
	return nil
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
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	if a.Embedded != nil {
		errs = append(errs, a.Embedded.Close())
	}
	return errors.Join(errs...)
}
