package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// The auditor's read-model subcommands; the logic is in handlers/audit.
func init() {
	subcommands["replay"] = subcommand{"every read model as it stood at a past instant, as JSON or JSON and CSV files", runReplay}
	subcommands["verify"] = subcommand{"rebuild every read model from zero and compare its digest with what a running orderd reports", runVerify}
}

func runReplay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", "[flags]", "")
	c := storeFlags(fs)
	asOf := fs.String("as-of", "", "the instant (RFC 3339, e.g. 2026-03-01T18:00:00+01:00): the log is folded up to the last commit recorded at or before it")
	out := fs.String("out", "", "folder to write <model>.json, <model>.csv and replay.json into; without it, JSON goes to standard output")
	format := fs.String("format", "", "json, csv or both (default: json on standard output, both into --out)")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	if *asOf == "" {
		return usagef("--as-of <RFC 3339 time> is required")
	}
	t, err := time.Parse(time.RFC3339Nano, *asOf)
	if err != nil {
		return usagef("--as-of: %w", err)
	}
	asJSON, asCSV := true, *out != ""
	switch *format {
	case "":
	case "json":
		asCSV = false
	case "csv":
		asJSON, asCSV = false, true
	case "both":
		asCSV = true
	default:
		return usagef("--format %q: json, csv or both", *format)
	}
	if *out == "" && asCSV {
		return usagef("CSV is written as one file per model: give --out <folder>")
	}
	return withStore(c, func(ctx context.Context, s eventstore.Store) error {
		r, err := audit.ReplayAsOf(ctx, s, t, audit.NewBar(stderr, "replay"))
		if err != nil {
			return err
		}
		if *out == "" {
			return r.WriteJSON(stdout)
		}
		rep, err := r.WriteFiles(*out, asJSON, asCSV)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "read models as of %s (position %d) written to %s:\n", t.Format(time.RFC3339Nano), rep.Position, *out)
		for _, m := range rep.Models {
			fmt.Fprintf(stdout, "  %-16s digest %s  %s\n", m.Name, m.Digest, strings.Join(m.Files, " "))
		}
		return nil
	})
}

func runVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "--server <url> [flags]",
		"Rebuilds every read model from zero, each up to the position the server reports for it,\n"+
			"and compares its digest with the server's. The log is read through the server's audit\n"+
			"API unless --store (or --log-from-data) names the store to read it from.")
	c := storeFlags(fs)
	srv := serverFlags(fs)
	fromData := fs.Bool("log-from-data", false, "read the log from the embedded store in --data (only while no orderd runs on it)")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	if srv.url == "" {
		return usagef("--server <url> is required")
	}
	if !fs.Given("store") {
		c.URL = "" // the log comes from the server unless --store is given on the command line
	}
	remote, err := srv.remote(c.DataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	reported, err := remote.Projections(ctx)
	if err != nil {
		return err
	}
	check := func(ctx context.Context, log eventstore.Store) error {
		rep, err := audit.VerifyModels(ctx, log, reported, audit.NewBar(stderr, "verify"))
		if err != nil {
			return err
		}
		if err := rep.WriteText(stdout); err != nil {
			return err
		}
		if bad := rep.Differing(); len(bad) > 0 {
			return fmt.Errorf("read models that differ from the log: %s", strings.Join(bad, ", "))
		}
		fmt.Fprintf(stdout, "ok: %d read models rebuilt from %d events match the server\n", len(rep.Models), rep.Events)
		return nil
	}
	if c.URL == "" && !*fromData {
		return check(ctx, remote.Log())
	}
	if !*fromData {
		c.DataDir = ""
	}
	return withStore(c, check)
}

// server names a running orderd whose audit API a command reads, the same way in every
// command that can.
type server struct{ url, token string }

func serverFlags(fs *flags) *server {
	s := &server{}
	fs.Settings.String(&s.url, "server", "", "orderd's base URL, e.g. http://127.0.0.1:8080")
	fs.Settings.String(&s.token, "token", "", "bearer token with the auditor role; without it, one is minted with --data's development key")
	return s
}

// remote is the server, with a short-lived auditor token minted from dataDir's
// development key when none was given.
func (s *server) remote(dataDir string) (*audit.Remote, error) {
	if s.token == "" {
		key, err := tokens.LoadPrivateKey(tokens.DevKeyFile(dataDir))
		if err != nil {
			return nil, fmt.Errorf("no --token, and no development key to mint one: %w", err)
		}
		if s.token, err = tokens.Mint(key, tokens.RoleAuditor, "orderctl", time.Hour); err != nil {
			return nil, err
		}
	}
	return audit.NewRemote(s.url, s.token, nil)
}
