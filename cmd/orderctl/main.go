// Command orderctl is the operator's and auditor's command line. Each subcommand is one
// entry in the table below with its own flag set.
//
// It uses the standard flag package rather than cobra: the module does not carry cobra,
// and a table of subcommands with a FlagSet each is all the structure it needs.
//
// Conventions, the same in every binary of the product: help asked for (-h, --help, help)
// goes to standard output and exits 0; a usage error (unknown flag or command, stray or
// missing argument) is printed once on standard error, with the way to get help, and
// exits 2; any other failure exits 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/einvoice/spaceorders/handlers/cli"
)

type subcommand struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var subcommands = map[string]subcommand{
	"token": {"print a bearer token signed with a data folder's development key (or a given key)", runToken},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, cli.Version("orderctl"))
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "orderctl: unknown command %q\nrun 'orderctl --help' for the commands\n", args[0])
		return 2
	}
	err := sc.run(args[1:], stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "orderctl %s: %v\nrun 'orderctl %s -h' for its flags\n", args[0], ue.err, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "orderctl %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: orderctl <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'orderctl <command> -h' for its flags; 'orderctl --version' for the build")
}

// usageError is a command line the command cannot run: run prints it once and exits 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// usagef makes a usage error.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// flags is a subcommand's flag set. The flag package itself prints nothing: parse reports
// an error once (through run), and help goes to standard output.
type flags struct {
	*flag.FlagSet
	help func()
}

// newFlags makes the flag set of "orderctl name". synopsis is what follows the name in
// the usage line; about, if not empty, a paragraph under it.
func newFlags(name, synopsis, about string, stdout io.Writer) *flags {
	fs := flag.NewFlagSet("orderctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, help: func() {
		fmt.Fprintf(stdout, "usage: orderctl %s %s\n", name, synopsis)
		if about != "" {
			fmt.Fprintf(stdout, "\n%s\n", about)
		}
		fmt.Fprintln(stdout, "\nflags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}}
}

// parse parses args, allowing at most positional arguments after the flags. Help asked
// for prints the usage and answers flag.ErrHelp; anything else wrong is a usageError.
func (f *flags) parse(args []string, positional int) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.help()
			return err
		}
		return usageError{err}
	}
	if f.NArg() > positional {
		return usagef("unexpected argument %q", f.Arg(positional))
	}
	return nil
}

// envOr is the variable's value, or def when it is unset or empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
