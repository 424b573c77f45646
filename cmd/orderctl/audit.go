package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/command"
)

// The auditor's subcommands; the logic is in handlers/audit.
func init() {
	subcommands["history"] = subcommand{"the timeline of an order or subscription: when, which event, who, which channel, payload", runHistory}
	subcommands["export"] = subcommand{"write the whole log as JSON lines with positions, metadata and a digest trailer", runExport}
	subcommands["import"] = subcommand{"write an exported log into another (empty) store, keeping ids and order, then verify", runImport}
	subcommands["verify-chain"] = subcommand{"check every hash chain, the log digest, every position and stream version, and the signed checkpoints, of a store or an exported file", runVerifyChain}
	subcommands["digest"] = subcommand{"print the running log digest at a position (default: the head)", runDigest}
}

// storeFlags name the store the way orderd is configured, with orderd's settings: the
// same flags and the same variables (ORDERD_DATA, ORDERD_STORE, ORDERD_STORE_PREFIX).
func storeFlags(fs *flags) *open.Config {
	c := &open.Config{}
	fs.StringAs(&c.DataDir, "data", "ORDERD_DATA", "./data", "orderd's data folder with the embedded store; not while orderd runs on it: use --store with its NATS URL")
	fs.StringAs(&c.URL, "store", "ORDERD_STORE", "", "URL of the store instead: nats://host:4222 (a NATS server or cluster) or esdb://host:2113?tls=false (KurrentDB)")
	fs.StringAs(&c.StreamPrefix, "store-prefix", "ORDERD_STORE_PREFIX", "", "prefix of the product's stream names in KurrentDB, as orderd's --store-prefix")
	return c
}

// withLog is withStore, or the log of the running orderd named by --server.
func withLog(c *open.Config, srv *server, fn func(ctx context.Context, s eventstore.Store) error) error {
	if srv.url == "" {
		return withStore(c, fn)
	}
	remote, err := srv.remote(c.DataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return fn(ctx, remote.Log())
}

func withStore(c *open.Config, fn func(ctx context.Context, s eventstore.Store) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := open.Open(ctx, *c)
	if err != nil {
		return err
	}
	err = fn(ctx, s.Store)
	return errors.Join(err, s.Close())
}

func runHistory(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("history", "[flags] <order-<uuid> | subscription-<uuid> | uuid>", "")
	c := storeFlags(fs)
	srv := serverFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.parse(args, stdout, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give one stream or id")
	}
	return withLog(c, srv, func(ctx context.Context, s eventstore.Store) error {
		stream, err := audit.ResolveStream(ctx, s, fs.Arg(0), command.OrderCategory, command.SubscriptionCategory)
		if err != nil {
			return err
		}
		tl, err := audit.History(ctx, s, stream)
		if err != nil {
			return err
		}
		if *asJSON {
			return tl.WriteJSON(stdout)
		}
		return tl.WriteTable(stdout)
	})
}

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "[flags]", "")
	c := storeFlags(fs)
	out := fs.String("out", "-", "file to write the JSON lines to; - is standard output")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	return withStore(c, func(ctx context.Context, s eventstore.Store) error {
		w := stdout
		var f *os.File
		if *out != "-" {
			var err error
			if f, err = os.Create(*out); err != nil {
				return err
			}
			w = f
		}
		d, err := audit.Export(ctx, s, w, audit.NewBar(stderr, "export"))
		if f != nil {
			err = errors.Join(err, f.Sync(), f.Close())
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d events; log digest %s at position %d\n", d.Events, d.Sum, d.Position)
		return nil
	})
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "[flags] <export.jsonl | ->",
		"The store flags name the target, which must hold nothing but this log (a re-run skips what is there).")
	c := storeFlags(fs)
	relaxed := fs.Bool("relaxed-sync", false, "an embedded target does not fsync every append (faster; rerun the import after a crash)")
	keyFiles := fs.List("checkpoint-key", "PEM file of a public checkpoint key the export's signed checkpoints must verify with (repeat for old keys); default: the --data folder's")
	if err := fs.parse(args, stdout, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give the exported file, or - for standard input")
	}
	c.RelaxedSync = *relaxed
	var in io.Reader = os.Stdin
	opts := audit.ImportOptions{Progress: audit.NewBar(stderr, "import"), VerifyProgress: audit.NewBar(stderr, "verify")}
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		// A file is checked whole before anything is written, so a damaged export writes
		// nothing: chains, gaps, and the signed checkpoints when a key is at hand.
		keys, err := checkpointKeys(*keyFiles, c.DataDir)
		if err != nil {
			return err
		}
		res, err := audit.CheckExport(f, audit.CheckOptions{Keys: keys})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := res.Err(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n := res.Checkpoints.Unchecked; n > 0 {
			fmt.Fprintf(stderr, "warning: %d signed checkpoints not checked: no checkpoint key (--checkpoint-key)\n", n)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		opts.Head = res.Report.Digest.Position
		in = f
	}
	return withStore(c, func(ctx context.Context, s eventstore.Store) error {
		rep, err := audit.Import(ctx, s, in, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imported %d events in %d commits (%d commits were there already); log digest %s, equal to the export's\n",
			rep.Events, rep.Commits, rep.Skipped, rep.Target.Sum)
		return nil
	})
}

func runVerifyChain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify-chain", "[flags]", "")
	c := storeFlags(fs)
	file := fs.String("file", "", "check an exported file (- for standard input) instead of a store")
	expect := fs.String("expect-digest", "", "a log digest (hex) recorded earlier, which the log must still have at --at")
	at := fs.String("at", "", "the position --expect-digest was recorded at")
	keyFiles := fs.List("checkpoint-key", "PEM file of a public checkpoint key to verify the signed checkpoints with (repeat for old keys); default: the --data folder's checkpoint-public.pem")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	var exp *audit.Expect
	if *expect != "" || *at != "" {
		p, err := strconv.ParseUint(*at, 10, 64)
		if err != nil || *expect == "" {
			return usagef("--expect-digest and --at <position> go together")
		}
		exp = &audit.Expect{Position: p, Digest: *expect}
	}
	keys, err := checkpointKeys(*keyFiles, c.DataDir)
	if err != nil {
		return err
	}
	opts := audit.CheckOptions{Expect: exp, Keys: keys}
	if *file != "" {
		return checkExportFile(*file, opts, stdout)
	}
	// The data folder's last checkpoint applies to its own store: the embedded one, or the
	// store named with --store when --data is given too.
	dataGiven := c.URL == "" || fs.Given("data")
	return withStore(c, func(ctx context.Context, s eventstore.Store) error {
		opts.Progress = audit.NewBar(stderr, "verify")
		res, err := audit.CheckStore(ctx, s, opts)
		if err != nil {
			return err
		}
		var tail error
		if dataGiven {
			var lost *checkpoint.TailLost
			if tail = checkpoint.CheckTail(ctx, s, c.DataDir); tail != nil && !errors.As(tail, &lost) {
				return tail
			}
		}
		return reportCheck(stdout, res, exp, tail)
	})
}

// checkExportFile checks the exported file name (- for standard input) and reports it.
func checkExportFile(name string, opts audit.CheckOptions, stdout io.Writer) error {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	res, err := audit.CheckExport(in, opts)
	if err != nil {
		return err
	}
	return reportCheck(stdout, res, opts.Expect, nil)
}

// checkpointKeys are the named key files, else the data folder's checkpoint keys.
func checkpointKeys(files []string, dataDir string) ([]ed25519.PublicKey, error) {
	if len(files) > 0 {
		k, err := checkpoint.LoadPublicKeys(files)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint-key: %w", err)
		}
		return k, nil
	}
	k, err := checkpoint.PublicKeys(dataDir)
	if err != nil {
		return nil, fmt.Errorf("--data %s: checkpoint key: %w", dataDir, err)
	}
	return k, nil
}

// reportCheck prints what a check found, one line per finding, and fails when it found any.
func reportCheck(w io.Writer, res audit.CheckResult, exp *audit.Expect, tail error) error {
	bad := false
	if res.Damage != nil {
		bad = true
		for _, g := range res.Damage.Gaps {
			fmt.Fprintf(w, "DAMAGED: %s\n", g)
		}
	}
	if tail != nil {
		bad = true
		fmt.Fprintf(w, "DAMAGED: %v\n", tail)
	}
	if res.Break != nil {
		bad = true
		fmt.Fprintf(w, "TAMPERED: %v\n", res.Break)
	}
	cps := res.Checkpoints
	if cps.Failure != nil {
		bad = true
		fmt.Fprintf(w, "TAMPERED: %v\n", cps.Failure)
	}
	if bad {
		return errors.New("the log is not as it was written")
	}
	rep := res.Report
	fmt.Fprintf(w, "ok: %d streams, %d events, every hash chain intact, no position or stream version missing\nlog digest %s at position %d\n",
		rep.Streams, rep.Digest.Events, rep.Digest.Sum, rep.Digest.Position)
	if rep.Checked {
		fmt.Fprintf(w, "the recorded digest at position %d matches\n", exp.Position)
	}
	fmt.Fprintf(w, "%d signed checkpoints verified", cps.Verified)
	if cps.Last != nil {
		fmt.Fprintf(w, ", the last signing %d events up to position %d", cps.Last.Events, cps.Last.Position)
	}
	fmt.Fprintln(w)
	if cps.Unchecked > 0 {
		fmt.Fprintf(w, "WARNING: %d signed checkpoints not checked: no checkpoint key (give --checkpoint-key, or --data with %s)\n",
			cps.Unchecked, checkpoint.PublicKeyFileName)
	}
	return nil
}

func runDigest(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("digest", "[flags]", "")
	c := storeFlags(fs)
	at := fs.Uint64("at", 0, "position to stop at (0: the head)")
	if err := fs.parse(args, stdout, 0); err != nil {
		return err
	}
	return withStore(c, func(ctx context.Context, s eventstore.Store) error {
		d, err := audit.DigestAt(ctx, s, *at, audit.NewBar(stderr, "digest"))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s position=%d events=%d\n", d.Sum, d.Position, d.Events)
		return err
	})
}
