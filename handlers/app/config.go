package app

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/open"
	"github.com/einvoice/spaceorders/handlers/cli"
	"github.com/einvoice/spaceorders/handlers/httpapi"
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
	// (--nats-listen, ORDERD_NATS_LISTEN). Empty: in-process only. Beyond loopback it
	// needs NATS credentials: whoever reaches it could read and write the event log.
	NATSListen string
	// NATSUser and NATSPassword are the NATS user the embedded server admits and
	// orderd's own NATS connections use (--nats-user, ORDERD_NATS_USER; the password only
	// from ORDERD_NATS_PASSWORD).
	NATSUser     string
	NATSPassword string
	// NATSNKeySeed is a file holding a NATS user nkey seed ("SU..."): the embedded server
	// admits its public key, and orderd's own NATS connections sign with it
	// (--nats-nkey-seed, ORDERD_NATS_NKEY_SEED).
	NATSNKeySeed string
	// ShutdownTimeout bounds the drain of in-flight requests (--shutdown-timeout,
	// ORDERD_SHUTDOWN_TIMEOUT). Default 15 s.
	ShutdownTimeout time.Duration

	// Store is the event store (--store, ORDERD_STORE): empty for the embedded JetStream
	// store in DataDir/jetstream; nats://host:4222 (comma-separated for a cluster) for a
	// JetStream store on that server; esdb://host:2113?tls=false for KurrentDB.
	Store string
	// StorePrefix goes before every stream name in KurrentDB (--store-prefix,
	// ORDERD_STORE_PREFIX), e.g. "spaceorders.", so that the product's streams are told
	// apart from other applications' in the same database. Empty: none (every
	// <category>-<uuid> stream is taken as the product's). KurrentDB only.
	StorePrefix string
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
	// AllowDamagedLog starts on a log the start check finds damaged (a missing position or
	// stream version, or the data folder's last checkpoint gone), logging the damage
	// (--allow-damaged-log, ORDERD_ALLOW_DAMAGED_LOG). Default: refuse to start.
	AllowDamagedLog bool
	// CheckpointEvery and CheckpointInterval say how often the log head is signed: after
	// so many events, or at least this often while events come (--checkpoint-every,
	// --checkpoint-interval; ORDERD_CHECKPOINT_EVERY, ORDERD_CHECKPOINT_INTERVAL), and at
	// shutdown. Defaults 10,000 events and 1 min.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// Clock is the product's "now" (commands, queries, sweeper). Not a setting: tests
	// move it. Default time.Now.
	Clock func() time.Time
	// CORSOrigins are the browser origins allowed to call the API, e.g.
	// https://panel.example.com (--cors-origins, ORDERD_CORS_ORIGINS; comma-separated).
	// None: no CORS headers, so browsers on other origins cannot read the answers.
	CORSOrigins []string
	// NATSReplicas is the number of replicas of every stream and bucket orderd makes on
	// NATS (--nats-replicas, ORDERD_NATS_REPLICAS): 3 on a 3-node cluster. Default 1.
	// An existing stream with another number is changed to it at start.
	NATSReplicas int
	// ReplicaName names this orderd among the replicas of one deployment, in /readyz, the
	// metrics and the leases of the roles done once per deployment (--replica-name,
	// ORDERD_REPLICA_NAME). Default: the host name and a random suffix.
	ReplicaName string
	// LeaseTTL is how long a role (relay, sweeper) stays with a replica that stopped
	// renewing it (--lease-ttl, ORDERD_LEASE_TTL): the time to fail over. Default 5 s.
	LeaseTTL time.Duration
}

// Defaults of the settings outside scripts rely on.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultDataDir       = "./data"
	DefaultMailFrom      = "Fatturazione Elettronica <noreply@localhost>"
	DefaultSMTPTLS       = "starttls"
	DefaultSweepInterval = time.Minute
	DefaultReadWait      = 3 * time.Second
	DefaultLeaseTTL      = 5 * time.Second
)

// ParseConfig reads orderd's settings from getenv, then from args (a flag wins), as the
// one table settings builds; help asked for is written to stdout and answers
// flag.ErrHelp, and a usage error is a cli.UsageError.
func ParseConfig(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	var c Config
	s := settings(&c)
	if err := s.Parse(args, getenv, stdout); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, cli.UsageError{Err: err}
	}
	return c, nil
}

// settings is orderd's table of settings: flag, environment variable, default and help of
// each, bound to c's fields. The README's configuration table follows it.
func settings(c *Config) *cli.Settings {
	var mailerOn bool
	s := cli.NewSettings("orderd", "ORDERD_", "[settings]")
	s.String(&c.Addr, "addr", DefaultAddr, "host:port the API listens on")
	s.String(&c.DataDir, "data", DefaultDataDir, "folder of the embedded store, read-model snapshots, outbox, checkpoints and keys")
	s.String(&c.Store, "store", "", "event store URL: empty for the embedded store in --data, nats://host:4222 (JetStream on a NATS server or cluster) or esdb://host:2113?tls=false (KurrentDB)")
	s.String(&c.StorePrefix, "store-prefix", "", "prefix of the product's stream names in KurrentDB, e.g. spaceorders., to tell them apart from other applications'")
	s.String(&c.NATSURL, "nats-url", "", "NATS URL of the notifications and idempotency keys; empty: the --store's NATS server, else the embedded one")
	s.String(&c.NATSListen, "nats-listen", "", "host:port for other processes to reach the embedded NATS server; beyond loopback only with NATS credentials")
	s.String(&c.NATSUser, "nats-user", "", "NATS user the embedded server admits and orderd connects as; the password only from ORDERD_NATS_PASSWORD")
	s.Secret(&c.NATSPassword, "ORDERD_NATS_PASSWORD", "password of --nats-user")
	s.String(&c.NATSNKeySeed, "nats-nkey-seed", "", "file of a NATS user nkey seed: the embedded server admits its public key, orderd connects with it")
	s.Bool(&c.RelaxedSync, "relaxed-sync", false, "do not fsync every append: faster, but a power loss may lose acknowledged commands; for tests and benchmarks")
	s.List(&c.JWTPublicKeys, "jwt-public-key", "ORDERD_JWT_PUBLIC_KEYS", "PEM files of the Ed25519 public keys tokens are verified with (repeat or comma-separate, for rotation); none: a development key in --data, loopback only")
	s.List(&c.CORSOrigins, "cors-origins", "", "browser origins allowed to call the API, comma-separated, e.g. https://panel.example.com; none by default")
	s.String(&c.CatalogueFile, "catalogue", "", "catalogue JSON file replacing the embedded one (prices, VAT, payment methods)")
	s.Bool(&mailerOn, "mailer", true, "run the mailer in this process; false when cmd/mailer runs on its own")
	s.String(&c.SMTPHost, "smtp-host", "", "SMTP server host; empty writes .eml files to <data>/outbox")
	s.Int(&c.SMTPPort, "smtp-port", 0, "SMTP port; 0: 587 starttls, 465 tls, 25 none")
	s.String(&c.SMTPTLS, "smtp-tls", DefaultSMTPTLS, "SMTP TLS mode: none, starttls or tls")
	s.String(&c.SMTPUser, "smtp-user", "", "SMTP user name, authenticating when set; the password only from ORDERD_SMTP_PASSWORD")
	s.Secret(&c.SMTPPassword, "ORDERD_SMTP_PASSWORD", "password of --smtp-user")
	s.String(&c.MailFrom, "mail-from", DefaultMailFrom, "sender address of the emails")
	s.Duration(&c.SweepInterval, "sweep-interval", DefaultSweepInterval, "how often unpaid orders past their term and abandoned carts are ended")
	s.Duration(&c.ReadWait, "read-wait", DefaultReadWait, "how long a query with ?after= waits for the read models before 503")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to drain in-flight requests on SIGINT/SIGTERM")
	s.Bool(&c.AllowDamagedLog, "allow-damaged-log", false, "start even when the start check finds the log damaged (a missing position or stream version, the last checkpoint gone); the damage is logged")
	s.String(&c.DebugAddr, "debug-addr", "", "loopback host:port serving net/http/pprof for profiling; empty: none")
	s.Int(&c.CheckpointEvery, "checkpoint-every", 0, "sign the log head after this many events (0: 10000)")
	s.Duration(&c.CheckpointInterval, "checkpoint-interval", 0, "sign the log head at least this often while events come (0: 1m)")
	s.Int(&c.NATSReplicas, "nats-replicas", 1, "replicas of every stream and bucket orderd makes on NATS (3 on a 3-node cluster); changed at start when it differs")
	s.String(&c.ReplicaName, "replica-name", "", "name of this replica in /readyz, metrics and role leases; empty: the host name and a random suffix")
	s.Duration(&c.LeaseTTL, "lease-ttl", DefaultLeaseTTL, "how long a role done once per deployment (relay, sweeper) stays with a replica that stopped renewing it: the failover time")
	// NoMailer is the negation of --mailer, set once the table is parsed.
	s.After(func() { c.NoMailer = !mailerOn })
	return s
}

// Store kinds, by the scheme of Config.Store.
const (
	StoreEmbedded = open.Embedded
	StoreNATS     = open.NATS
	StoreKurrent  = open.Kurrent
)

// StoreKind says which event store Store names, or why it names none.
func (c Config) StoreKind() (string, error) {
	kind, err := open.Kind(c.Store)
	if err != nil {
		return "", fmt.Errorf("--store (ORDERD_STORE) %w", err)
	}
	return kind, nil
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
	if c.NATSReplicas == 0 {
		c.NATSReplicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	return c
}

// Validate checks the settings (zero ones take their defaults), naming the first that is wrong.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, check := range []func() error{c.validateListening, c.validateStore, c.validateNATS, c.validateMail, c.validateTimings} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateListening checks where orderd listens (the API, NATS, profiling) and who may
// call the API.
func (c Config) validateListening() error {
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
	for _, o := range c.CORSOrigins {
		if _, err := httpapi.ParseOrigin(o); err != nil {
			return fmt.Errorf("--cors-origins (ORDERD_CORS_ORIGINS): %w", err)
		}
	}
	return nil
}

// validateStore checks the event store's URL and its KurrentDB stream prefix.
func (c Config) validateStore() error {
	kind, err := c.StoreKind()
	if err != nil {
		return err
	}
	if c.StorePrefix != "" {
		if kind != StoreKurrent {
			return fmt.Errorf("--store-prefix (ORDERD_STORE_PREFIX) %q: only for a KurrentDB store (esdb://)", c.StorePrefix)
		}
		if err := kurrentdb.ValidPrefix(c.StorePrefix); err != nil {
			return fmt.Errorf("--store-prefix (ORDERD_STORE_PREFIX): %w", err)
		}
	}
	return nil
}

// validateNATS checks the NATS server orderd uses or embeds: its URL, who it admits from
// beyond loopback, and its replicas. It runs after validateStore, which checked the store's URL.
func (c Config) validateNATS() error {
	kind, _ := c.StoreKind()
	if natsKind, _ := open.Kind(c.NATSURL); c.NATSURL != "" && natsKind != open.NATS {
		return fmt.Errorf("--nats-url (ORDERD_NATS_URL) %q: want nats://host:4222 (comma-separated for a cluster)", c.NATSURL)
	}
	if c.NATSListen != "" && !c.embeddedNATS() {
		return fmt.Errorf("--nats-listen (ORDERD_NATS_LISTEN) %q: there is no embedded NATS server to listen with when --store or --nats-url names an external one", c.NATSListen)
	}
	if (c.NATSUser == "") != (c.NATSPassword == "") {
		return errors.New("--nats-user (ORDERD_NATS_USER) and ORDERD_NATS_PASSWORD go together: set both or neither")
	}
	if c.NATSListen != "" && c.NATSUser == "" && c.NATSNKeySeed == "" {
		if host, _, _ := net.SplitHostPort(c.NATSListen); !IsLoopback(host) {
			return fmt.Errorf("--nats-listen (ORDERD_NATS_LISTEN) %q listens beyond loopback, but no NATS credentials are configured "+
				"(--nats-user with ORDERD_NATS_PASSWORD, or --nats-nkey-seed): anyone on the network could read and write the event log", c.NATSListen)
		}
	}
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		return fmt.Errorf("--nats-replicas (ORDERD_NATS_REPLICAS) %d: want 1 to 5 (NATS's limit)", c.NATSReplicas)
	}
	if c.NATSReplicas > 1 && kind == StoreEmbedded && c.NATSURL == "" {
		return fmt.Errorf("--nats-replicas (ORDERD_NATS_REPLICAS) %d: the embedded NATS server is one server; replicas need a cluster given with --store nats://... or --nats-url", c.NATSReplicas)
	}
	return nil
}

// validateMail checks the in-process mailer's SMTP settings.
func (c Config) validateMail() error {
	switch c.SMTPTLS {
	case "none", "starttls", "tls":
	default:
		return fmt.Errorf("--smtp-tls (ORDERD_SMTP_TLS) %q: want none, starttls or tls", c.SMTPTLS)
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		return fmt.Errorf("--smtp-port (ORDERD_SMTP_PORT) %d: not 1..65535 (0: the TLS mode's default)", c.SMTPPort)
	}
	return nil
}

// validateTimings checks the durations and counts that say how often, and how long, orderd
// does things.
func (c Config) validateTimings() error {
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout (ORDERD_SHUTDOWN_TIMEOUT) %s: must be more than zero", c.ShutdownTimeout)
	}
	if c.SweepInterval <= 0 {
		return fmt.Errorf("--sweep-interval (ORDERD_SWEEP_INTERVAL) %s: must be more than zero", c.SweepInterval)
	}
	if c.ReadWait <= 0 {
		return fmt.Errorf("--read-wait (ORDERD_READ_WAIT) %s: must be more than zero", c.ReadWait)
	}
	if c.CheckpointEvery < 0 {
		return fmt.Errorf("--checkpoint-every (ORDERD_CHECKPOINT_EVERY) %d: must not be negative", c.CheckpointEvery)
	}
	if c.CheckpointInterval < 0 {
		return fmt.Errorf("--checkpoint-interval (ORDERD_CHECKPOINT_INTERVAL) %s: must not be negative", c.CheckpointInterval)
	}
	if c.LeaseTTL < 500*time.Millisecond {
		return fmt.Errorf("--lease-ttl (ORDERD_LEASE_TTL) %s: want at least 500ms (a lease is renewed three times per TTL)", c.LeaseTTL)
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

// corsOrigins is the origins in the form the API compares them (Validate has checked them).
func corsOrigins(list []string) []string {
	var out []string
	for _, o := range list {
		if n, err := httpapi.ParseOrigin(o); err == nil {
			out = append(out, n)
		}
	}
	return out
}
