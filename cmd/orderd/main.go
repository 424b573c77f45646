// Command orderd runs the whole order backend in one process: the HTTP API, the purchase
// process manager, the read models and their queries, the audit endpoints, the relay to
// NATS, the mailer and the sweeper of unpaid orders; on the embedded JetStream store in its
// data folder by default, or on the store --store names. `orderd -help` lists the settings
// (handlers/app.Config).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/einvoice/spaceorders/handlers/app"
)

func main() {
	cfg, err := app.ParseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orderd:", err)
		os.Exit(2)
	}
	log, err := newLogger()
	if err != nil {
		fmt.Fprintln(os.Stderr, "orderd: logger:", err)
		os.Exit(1)
	}
	defer log.Sync()
	if err := run(cfg, log); err != nil {
		log.Error("orderd stopped", zap.Error(err))
		log.Sync()
		os.Exit(1)
	}
}

func run(cfg app.Config, log *zap.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Shutdown(context.Background())
		return err
	}
	<-ctx.Done()
	stop()
	log.Info("stopping: draining requests", zap.Duration("timeout", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger writes JSON lines for log collectors, and readable lines to a person at a
// terminal, so that the first lines (where the data is, where the API listens, how to get
// a token) read as sentences.
func newLogger() (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Encoding = "console"
		cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.EncoderConfig.EncodeCaller = nil
	}
	return cfg.Build()
}
