package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Settings is one binary's table of settings: each is a flag and an environment variable
// with a default and a help text, bound to a variable. Parse reads the environment first,
// then the command line (a flag wins), and every error names both the flag and the
// variable. orderd and the mailer use one table each, so the same setting has the same
// name in both (--nats-url, ORDERD_NATS_URL / MAILER_NATS_URL).
type Settings struct {
	program, envPrefix, synopsis, about string
	list                                []*setting
	after                               []func()
}

type setting struct {
	name, env, help, def string
	value                flag.Value
	boolean              bool
	secret               bool // from the environment only: a flag would show in the process list
	given                bool // set on the command line
}

// NewSettings starts the table of program; envPrefix (e.g. "ORDERD_") is put before each
// setting's upper-cased name to make its variable, and synopsis follows the program's name
// in the usage line.
func NewSettings(program, envPrefix, synopsis string) *Settings {
	return &Settings{program: program, envPrefix: envPrefix, synopsis: synopsis}
}

func (s *Settings) add(st *setting) {
	if st.env == "" {
		st.env = s.envPrefix + strings.ToUpper(strings.ReplaceAll(st.name, "-", "_"))
	}
	st.def = st.value.String()
	s.list = append(s.list, st)
}

// Env names the environment variable of a setting added with name, for messages.
func (s *Settings) Env(name string) string {
	for _, st := range s.list {
		if st.name == name {
			return st.env
		}
	}
	return ""
}

// Names lists the flags' names, in the table's order.
func (s *Settings) Names() []string {
	var out []string
	for _, st := range s.list {
		if !st.secret {
			out = append(out, st.name)
		}
	}
	return out
}

// Name is "--name (ENV)", as errors about a setting say it.
func (s *Settings) Name(name string) string { return "--" + name + " (" + s.Env(name) + ")" }

// About adds a paragraph under the usage line.
func (s *Settings) About(text string) { s.about = text }

// String binds p, defaulting to def.
func (s *Settings) String(p *string, name, def, help string) {
	*p = def
	s.add(&setting{name: name, help: help, value: (*stringValue)(p)})
}

// StringAs binds p like String, to the variable env rather than the derived one: a
// setting shared with another binary keeps that binary's variable (orderctl reads
// orderd's ORDERD_DATA, so that both reach the same store).
func (s *Settings) StringAs(p *string, name, env, def, help string) {
	*p = def
	s.add(&setting{name: name, env: env, help: help, value: (*stringValue)(p)})
}

// Uint64 binds p, defaulting to def.
func (s *Settings) Uint64(p *uint64, name string, def uint64, help string) {
	*p = def
	s.add(&setting{name: name, help: help, value: (*uint64Value)(p)})
}

// Given reports whether the setting added with name was set on the command line (a
// command may treat an explicit flag otherwise than the environment's standing value).
func (s *Settings) Given(name string) bool {
	for _, st := range s.list {
		if st.name == name {
			return st.given
		}
	}
	return false
}

// Int binds p, defaulting to def.
func (s *Settings) Int(p *int, name string, def int, help string) {
	*p = def
	s.add(&setting{name: name, help: help, value: (*intValue)(p)})
}

// Bool binds p, defaulting to def. On the command line --name, --name=false and
// --name false all work.
func (s *Settings) Bool(p *bool, name string, def bool, help string) {
	*p = def
	s.add(&setting{name: name, help: help, value: (*boolValue)(p), boolean: true})
}

// Duration binds p, defaulting to def.
func (s *Settings) Duration(p *time.Duration, name string, def time.Duration, help string) {
	*p = def
	s.add(&setting{name: name, help: help, value: (*durationValue)(p)})
}

// List binds p to a list: comma-separated in the variable, and the flag repeated or
// comma-separated. env, when not empty, overrides the variable's derived name.
func (s *Settings) List(p *[]string, name, env, help string) {
	s.add(&setting{name: name, env: env, help: help, value: &listValue{p: p}})
}

// Secret binds p to a variable only (a password): flags show in the process list.
func (s *Settings) Secret(p *string, env, help string) {
	s.list = append(s.list, &setting{env: env, help: help, value: (*stringValue)(p), secret: true})
}

// After adds fn to run once Parse has set every setting: a field derived from others.
func (s *Settings) After(fn func()) { s.after = append(s.after, fn) }

// UsageError is a command line or environment the program cannot run with: it says so
// once and exits 2.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// Parse sets every setting from getenv, then from args. Help asked for (-h, --help) is
// written to stdout and answers flag.ErrHelp; anything wrong is a UsageError naming the
// flag and its variable. No argument may remain after the flags.
func (s *Settings) Parse(args []string, getenv func(string) string, stdout io.Writer) error {
	_, err := s.ParseArgs(args, getenv, stdout, 0)
	return err
}

// ParseArgs is Parse for a command that takes up to positional arguments after the
// settings (orderctl's "history <id>"): it answers them.
func (s *Settings) ParseArgs(args []string, getenv func(string) string, stdout io.Writer, positional int) ([]string, error) {
	for _, st := range s.list {
		v := getenv(st.env)
		if v == "" {
			continue
		}
		if err := st.value.Set(v); err != nil {
			return nil, UsageError{fmt.Errorf("%s=%q: %w", st.env, v, err)}
		}
	}
	for _, st := range s.list {
		if l, ok := st.value.(*listValue); ok {
			l.fromFlags = true
		}
	}
	fs := flag.NewFlagSet(s.program, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, st := range s.list {
		if !st.secret {
			fs.Var(st.value, st.name, st.help)
		}
	}
	if err := fs.Parse(s.joinBooleans(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.Usage(stdout)
			return nil, err
		}
		return nil, UsageError{s.nameInError(err)}
	}
	if fs.NArg() > positional {
		return nil, UsageError{fmt.Errorf("unexpected argument %q (settings are --name value or --name=value)", fs.Arg(positional))}
	}
	fs.Visit(func(f *flag.Flag) {
		if st := s.find(f.Name); st != nil {
			st.given = true
		}
	})
	for _, fn := range s.after {
		fn()
	}
	return fs.Args(), nil
}

// joinBooleans turns "--name false" into "--name=false" for boolean settings: the flag
// package would take "false" for a stray argument.
func (s *Settings) joinBooleans(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if st := s.find(name); st != nil && st.boolean && strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && i+1 < len(args) {
			if _, err := strconv.ParseBool(args[i+1]); err == nil {
				out = append(out, a+"="+args[i+1])
				i++
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func (s *Settings) find(name string) *setting {
	for _, st := range s.list {
		if st.name == name && !st.secret {
			return st
		}
	}
	return nil
}

// nameInError adds the variable to the flag package's "invalid value ... for flag -x".
func (s *Settings) nameInError(err error) error {
	msg := err.Error()
	for _, st := range s.list {
		if !st.secret && strings.Contains(msg, "flag -"+st.name+":") {
			return fmt.Errorf("%s (%s)", msg, st.env)
		}
	}
	return err
}

// Usage writes the table: each flag with its variable, default and help.
func (s *Settings) Usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n", s.program, s.synopsis)
	if s.about != "" {
		fmt.Fprintf(w, "\n%s\n", s.about)
	}
	fmt.Fprintf(w, "\nsettings (a flag wins over its environment variable):\n")
	for _, st := range s.list {
		if st.secret {
			fmt.Fprintf(w, "  %s\n    \t%s (environment only)\n", st.env, st.help)
			continue
		}
		def := ""
		if st.def != "" && st.def != "0" && st.def != "false" && st.def != "0s" {
			def = fmt.Sprintf(" (default %s)", st.def)
		}
		fmt.Fprintf(w, "  --%s, %s\n    \t%s%s\n", st.name, st.env, st.help, def)
	}
	if !strings.Contains(s.program, " ") { // a subcommand ("orderctl history") has no --version of its own
		fmt.Fprintf(w, "  --version\n    \tprint the build and exit\n")
	}
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }

type uint64Value uint64

func (v *uint64Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("not a whole number of zero or more")
	}
	*v = uint64Value(n)
	return nil
}
func (v *uint64Value) String() string { return strconv.FormatUint(uint64(*v), 10) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("not true or false")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) IsBoolFlag() bool { return true }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration such as 30s, 5m or 1h")
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }

type listValue struct {
	p *[]string
	// fromFlags: the next Set is the command line's first, which replaces what the
	// environment gave (flags win); later ones append.
	fromFlags bool
}

func (v *listValue) Set(s string) error {
	if v.fromFlags {
		*v.p, v.fromFlags = nil, false
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*v.p = append(*v.p, p)
		}
	}
	return nil
}
func (v *listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}
