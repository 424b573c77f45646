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
	"time"

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
	var ue cli.UsageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "orderctl %s: %v\nrun 'orderctl %s -h' for its flags\n", args[0], ue.Err, args[0])
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

// usagef makes a usage error: run prints it once and exits 2.
func usagef(format string, a ...any) error { return cli.UsageError{Err: fmt.Errorf(format, a...)} }

// flags is a subcommand's settings, on the table every binary of the product uses
// (handlers/cli): each is a flag and an environment variable (ORDERCTL_<NAME>, or orderd's
// own for the settings orderctl shares with it), with a default and a help text.
type flags struct {
	*cli.Settings
	args []string
}

// newFlags makes the settings of "orderctl name". synopsis is what follows the name in
// the usage line; about, if not empty, a paragraph under it.
func newFlags(name, synopsis, about string) *flags {
	s := cli.NewSettings("orderctl "+name, "ORDERCTL_", synopsis)
	if about != "" {
		s.About(about)
	}
	return &flags{Settings: s}
}

// parse reads the environment, then args, allowing at most positional arguments after
// the flags. Help asked for goes to stdout and answers flag.ErrHelp; anything else wrong
// is a cli.UsageError.
func (f *flags) parse(args []string, stdout io.Writer, positional int) error {
	rest, err := f.ParseArgs(args, os.Getenv, stdout, positional)
	f.args = rest
	return err
}

// Arg is the i-th positional argument, "" if absent; NArg how many there are.
func (f *flags) Arg(i int) string {
	if i < len(f.args) {
		return f.args[i]
	}
	return ""
}
func (f *flags) NArg() int { return len(f.args) }

// The setting kinds as the flag package answers them: a pointer to the value.

func (f *flags) String(name, def, help string) *string {
	p := new(string)
	f.Settings.String(p, name, def, help)
	return p
}

func (f *flags) Bool(name string, def bool, help string) *bool {
	p := new(bool)
	f.Settings.Bool(p, name, def, help)
	return p
}

func (f *flags) Duration(name string, def time.Duration, help string) *time.Duration {
	p := new(time.Duration)
	f.Settings.Duration(p, name, def, help)
	return p
}

func (f *flags) Uint64(name string, def uint64, help string) *uint64 {
	p := new(uint64)
	f.Settings.Uint64(p, name, def, help)
	return p
}

// List is a setting given many times (or comma-separated).
func (f *flags) List(name, help string) *[]string {
	p := new([]string)
	f.Settings.List(p, name, "", help)
	return p
}
