package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is everything orderd is started with. Each field has a flag and an environment
// variable; a flag wins over the environment.
type Config struct {
	// Addr is where the API listens (--addr, ORDERD_ADDR). Default 127.0.0.1:8080.
	Addr string
	// DataDir holds the event store, checkpoints and the development key (--data, ORDERD_DATA).
	DataDir string
	// RelaxedSync stops the fsync of every append (--relaxed-sync, ORDERD_RELAXED_SYNC):
	// faster, but a power loss may lose acknowledged commands. For tests and benchmarks.
	RelaxedSync bool
	// JWTPublicKeys are PEM files of the Ed25519 keys tokens are verified with
	// (--jwt-public-key, repeatable; ORDERD_JWT_PUBLIC_KEYS, comma-separated). None: a
	// development key is made in DataDir and the API listens on loopback only.
	JWTPublicKeys []string
	// CatalogueFile replaces the embedded catalogue (--catalogue, ORDERD_CATALOGUE).
	CatalogueFile string
	// NATSListen lets other processes reach the embedded NATS server, e.g. 127.0.0.1:4222
	// (--nats-listen, ORDERD_NATS_LISTEN). Empty: in-process only.
	NATSListen string
	// ShutdownTimeout bounds the drain of in-flight requests (--shutdown-timeout,
	// ORDERD_SHUTDOWN_TIMEOUT). Default 15 s.
	ShutdownTimeout time.Duration

	// Store is the event store (--store, ORDERD_STORE): empty for the embedded JetStream
	// store in DataDir/jetstream; nats://host:4222 (comma-separated for a cluster) for a
	// JetStream store on that server; esdb://host:2113?tls=false for KurrentDB.
	Store string
	// NATSURL is the NATS server of the notifications (relay, mailer) and of the
	// idempotency keys (--nats-url, ORDERD_NATS_URL). Empty: the store's own NATS server
	// when Store is nats://, else the embedded one.
	NATSURL string
	// NoMailer stops the mailer from running in this process (--mailer=false,
	// ORDERD_MAILER=false), when cmd/mailer runs on its own.
	NoMailer bool
	// SMTP* say where the in-process mailer sends (--smtp-host, --smtp-port, --smtp-tls,
	// --smtp-user; ORDERD_SMTP_*, the password only from ORDERD_SMTP_PASSWORD). No host:
	// emails are written as .eml files to DataDir/outbox.
	SMTPHost     string
	SMTPPort     int
	SMTPTLS      string
	SMTPUser     string
	SMTPPassword string
	// MailFrom is the sender of the emails (--mail-from, ORDERD_MAIL_FROM). Default
	// DefaultMailFrom.
	MailFrom string
	// SweepInterval is how often confirmed orders unpaid past their term are expired
	// (--sweep-interval, ORDERD_SWEEP_INTERVAL). Default 1 min.
	SweepInterval time.Duration
	// ReadWait bounds how long a query with ?after=<position> waits for the read models
	// (--read-wait, ORDERD_READ_WAIT). Default 3 s.
	ReadWait time.Duration
	// DebugAddr serves net/http/pprof on this loopback host:port (--debug-addr,
	// ORDERD_DEBUG_ADDR), for profiling. Empty: no profiling endpoint.
	DebugAddr string
	// Clock is the product's "now" (commands, queries, sweeper). Not a setting: tests
	// move it. Default time.Now.
	Clock func() time.Time
}

// Defaults of the settings outside scripts rely on.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultDataDir       = "./data"
	DefaultMailFrom      = "Fatturazione Elettronica <noreply@localhost>"
	DefaultSMTPTLS       = "starttls"
	DefaultSweepInterval = time.Minute
	DefaultReadWait      = 3 * time.Second
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// ParseConfig reads the flags in args over the environment (getenv) over the defaults,
// and checks the result; an error names the setting that is wrong.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	c := Config{Addr: DefaultAddr, DataDir: DefaultDataDir, ShutdownTimeout: 15 * time.Second,
		SMTPTLS: DefaultSMTPTLS, MailFrom: DefaultMailFrom,
		SweepInterval: DefaultSweepInterval, ReadWait: DefaultReadWait}
	mailerOn := true
	str := func(p *string, env string) {
		if v := getenv(env); v != "" {
			*p = v
		}
	}
	boolean := func(p *bool, env string) error {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", env, v)
			}
			*p = b
		}
		return nil
	}
	duration := func(p *time.Duration, env, example string) error {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration such as %s", env, v, example)
			}
			*p = d
		}
		return nil
	}
	str(&c.Addr, "ORDERD_ADDR")
	str(&c.DataDir, "ORDERD_DATA")
	if v := getenv("ORDERD_JWT_PUBLIC_KEYS"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.JWTPublicKeys = append(c.JWTPublicKeys, p)
			}
		}
	}
	c.CatalogueFile = getenv("ORDERD_CATALOGUE")
	c.NATSListen = getenv("ORDERD_NATS_LISTEN")
	c.Store = getenv("ORDERD_STORE")
	c.NATSURL = getenv("ORDERD_NATS_URL")
	c.DebugAddr = getenv("ORDERD_DEBUG_ADDR")
	str(&c.SMTPHost, "ORDERD_SMTP_HOST")
	str(&c.SMTPTLS, "ORDERD_SMTP_TLS")
	str(&c.SMTPUser, "ORDERD_SMTP_USER")
	// The password only from the environment: flags show in the process list.
	c.SMTPPassword = getenv("ORDERD_SMTP_PASSWORD")
	str(&c.MailFrom, "ORDERD_MAIL_FROM")
	if v := getenv("ORDERD_SMTP_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("ORDERD_SMTP_PORT: %q is not a port number", v)
		}
		c.SMTPPort = p
	}
	if err := errors.Join(
		boolean(&c.RelaxedSync, "ORDERD_RELAXED_SYNC"),
		boolean(&mailerOn, "ORDERD_MAILER"),
		duration(&c.ShutdownTimeout, "ORDERD_SHUTDOWN_TIMEOUT", "15s"),
		duration(&c.SweepInterval, "ORDERD_SWEEP_INTERVAL", "1m"),
		duration(&c.ReadWait, "ORDERD_READ_WAIT", "3s"),
	); err != nil {
		return c, err
	}

	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", c.Addr, "`host:port` the API listens on (ORDERD_ADDR)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "`folder` of the embedded store, read-model snapshots, outbox, checkpoints and development key (ORDERD_DATA)")
	fs.BoolVar(&c.RelaxedSync, "relaxed-sync", c.RelaxedSync,
		"do not fsync every append: faster, but a power loss may lose acknowledged commands; for tests and benchmarks (ORDERD_RELAXED_SYNC)")
	var keys listFlag
	fs.Var(&keys, "jwt-public-key", "PEM `file` of an Ed25519 public key tokens are verified with; repeat for rotation (ORDERD_JWT_PUBLIC_KEYS, comma-separated)")
	fs.StringVar(&c.CatalogueFile, "catalogue", c.CatalogueFile, "catalogue JSON `file` replacing the embedded one (ORDERD_CATALOGUE)")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "`host:port` for other processes to reach the embedded NATS server (ORDERD_NATS_LISTEN)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to drain in-flight requests on SIGINT/SIGTERM (ORDERD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.Store, "store", c.Store, "event store `URL`: empty for the embedded store in --data, nats://host:4222 (JetStream on a NATS server or cluster) or esdb://host:2113?tls=false (KurrentDB) (ORDERD_STORE)")
	fs.StringVar(&c.NATSURL, "nats-url", c.NATSURL, "NATS `URL` of the notifications and idempotency keys; empty: the --store's NATS server, else the embedded one (ORDERD_NATS_URL)")
	fs.BoolVar(&mailerOn, "mailer", mailerOn, "run the mailer in this process; false when cmd/mailer runs on its own (ORDERD_MAILER)")
	fs.StringVar(&c.SMTPHost, "smtp-host", c.SMTPHost, "SMTP server `host`; empty writes .eml files to <data>/outbox (ORDERD_SMTP_HOST)")
	fs.IntVar(&c.SMTPPort, "smtp-port", c.SMTPPort, "SMTP `port`; 0: 587 starttls, 465 tls, 25 none (ORDERD_SMTP_PORT)")
	fs.StringVar(&c.SMTPTLS, "smtp-tls", c.SMTPTLS, "SMTP TLS `mode`: none, starttls or tls (ORDERD_SMTP_TLS)")
	fs.StringVar(&c.SMTPUser, "smtp-user", c.SMTPUser, "SMTP `user` name, authenticating when set; the password only from ORDERD_SMTP_PASSWORD (ORDERD_SMTP_USER)")
	fs.StringVar(&c.MailFrom, "mail-from", c.MailFrom, "sender `address` of the emails (ORDERD_MAIL_FROM)")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "loopback `host:port` serving net/http/pprof for profiling; empty: none (ORDERD_DEBUG_ADDR)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often unpaid orders past their term are expired (ORDERD_SWEEP_INTERVAL)")
	fs.DurationVar(&c.ReadWait, "read-wait", c.ReadWait, "how long a query with ?after= waits for the read models before 503 (ORDERD_READ_WAIT)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(keys) > 0 {
		c.JWTPublicKeys = keys
	}
	c.NoMailer = !mailerOn
	return c, c.Validate()
}

// Store kinds, by the scheme of Config.Store.
const (
	StoreEmbedded = "embedded"
	StoreNATS     = "nats"
	StoreKurrent  = "kurrentdb"
)

// StoreKind says which event store Store names, or why it names none.
func (c Config) StoreKind() (string, error) {
	switch {
	case c.Store == "":
		return StoreEmbedded, nil
	case hasScheme(c.Store, "esdb", "esdb+discover"):
		return StoreKurrent, nil
	case natsURLs(c.Store):
		return StoreNATS, nil
	}
	return "", fmt.Errorf("--store (ORDERD_STORE) %q: want empty (the embedded store), nats://host:4222 or esdb://host:2113?tls=false", c.Store)
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(u, s+"://") && len(u) > len(s)+3 {
			return true
		}
	}
	return false
}

// natsURLs: one or more comma-separated nats:// or tls:// URLs.
func natsURLs(v string) bool {
	for _, u := range strings.Split(v, ",") {
		if !hasScheme(strings.TrimSpace(u), "nats", "tls") {
			return false
		}
	}
	return true
}

// withDefaults fills the settings a Config literal may leave zero.
func (c Config) withDefaults() Config {
	if c.SMTPTLS == "" {
		c.SMTPTLS = DefaultSMTPTLS
	}
	if c.MailFrom == "" {
		c.MailFrom = DefaultMailFrom
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.ReadWait == 0 {
		c.ReadWait = DefaultReadWait
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate checks the settings (zero ones take their defaults), naming the first that is wrong.
func (c Config) Validate() error {
	c = c.withDefaults()
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr (ORDERD_ADDR) %q: want host:port, e.g. %s", c.Addr, DefaultAddr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--addr (ORDERD_ADDR) %q: port %q is not 0..65535", c.Addr, port)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("--data (ORDERD_DATA) is empty")
	}
	if len(c.JWTPublicKeys) == 0 && !IsLoopback(host) {
		return fmt.Errorf("--addr (ORDERD_ADDR) %q listens beyond loopback, but no --jwt-public-key (ORDERD_JWT_PUBLIC_KEYS) is configured: "+
			"the development key is for this machine only", c.Addr)
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("--nats-listen (ORDERD_NATS_LISTEN) %q: want host:port", c.NATSListen)
		}
	}
	if c.DebugAddr != "" {
		if h, _, err := net.SplitHostPort(c.DebugAddr); err != nil || !IsLoopback(h) {
			return fmt.Errorf("--debug-addr (ORDERD_DEBUG_ADDR) %q: want a loopback host:port such as 127.0.0.1:6060 (profiles show the process's internals)", c.DebugAddr)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout (ORDERD_SHUTDOWN_TIMEOUT) %s: must be more than zero", c.ShutdownTimeout)
	}
	if _, err := c.StoreKind(); err != nil {
		return err
	}
	if c.NATSURL != "" && !natsURLs(c.NATSURL) {
		return fmt.Errorf("--nats-url (ORDERD_NATS_URL) %q: want nats://host:4222 (comma-separated for a cluster)", c.NATSURL)
	}
	if c.NATSListen != "" && !c.embeddedNATS() {
		return fmt.Errorf("--nats-listen (ORDERD_NATS_LISTEN) %q: there is no embedded NATS server to listen with when --store or --nats-url names an external one", c.NATSListen)
	}
	switch c.SMTPTLS {
	case "none", "starttls", "tls":
	default:
		return fmt.Errorf("--smtp-tls (ORDERD_SMTP_TLS) %q: want none, starttls or tls", c.SMTPTLS)
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("--smtp-port (ORDERD_SMTP_PORT) %d: not 1..65535 (0: the TLS mode's default)", c.SMTPPort)
	}
	if c.SweepInterval <= 0 {
		return fmt.Errorf("--sweep-interval (ORDERD_SWEEP_INTERVAL) %s: must be more than zero", c.SweepInterval)
	}
	if c.ReadWait <= 0 {
		return fmt.Errorf("--read-wait (ORDERD_READ_WAIT) %s: must be more than zero", c.ReadWait)
	}
	return nil
}

// embeddedNATS: the process runs its own NATS server, for the store (the default), or
// for the notifications when the store is KurrentDB and no --nats-url is given.
func (c Config) embeddedNATS() bool {
	kind, _ := c.StoreKind()
	return kind == StoreEmbedded || (kind == StoreKurrent && c.NATSURL == "")
}

// IsLoopback reports whether host names only this machine ("" and 0.0.0.0 mean every
// interface, so they do not).
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
