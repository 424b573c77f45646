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
	"slices"
	"syscall"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/handlers/app"
	"github.com/einvoice/spaceorders/handlers/cli"
)

func main() {
	if slices.Contains(os.Args[1:], "--version") || slices.Contains(os.Args[1:], "-version") {
		fmt.Println(cli.Version("orderd"))
		return
	}
	cfg, err := app.ParseConfig(os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "orderd: %v\nrun 'orderd --help' for the settings\n", err)
		os.Exit(2)
	}
	log, err := cli.NewLogger()
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

// run serves until a signal, or until a part fails in a way a restart cannot mend; then
// it drains and stops everything. The latter is an error, so orderd exits non-zero.
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
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-a.Done():
	}
	stop()
	log.Info("stopping: draining requests", zap.Duration("timeout", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := errors.Join(failed, a.Shutdown(sctx)); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
