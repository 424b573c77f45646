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
}

// Defaults of the settings outside scripts rely on.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "./data"
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
	c := Config{Addr: DefaultAddr, DataDir: DefaultDataDir, ShutdownTimeout: 15 * time.Second}
	if v := getenv("ORDERD_ADDR"); v != "" {
		c.Addr = v
	}
	if v := getenv("ORDERD_DATA"); v != "" {
		c.DataDir = v
	}
	if v := getenv("ORDERD_RELAXED_SYNC"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("ORDERD_RELAXED_SYNC: %q is not true or false", v)
		}
		c.RelaxedSync = b
	}
	if v := getenv("ORDERD_JWT_PUBLIC_KEYS"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.JWTPublicKeys = append(c.JWTPublicKeys, p)
			}
		}
	}
	c.CatalogueFile = getenv("ORDERD_CATALOGUE")
	c.NATSListen = getenv("ORDERD_NATS_LISTEN")
	if v := getenv("ORDERD_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("ORDERD_SHUTDOWN_TIMEOUT: %q is not a duration such as 15s", v)
		}
		c.ShutdownTimeout = d
	}

	fs := flag.NewFlagSet("orderd", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.Addr, "addr", c.Addr, "`host:port` the API listens on (ORDERD_ADDR)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "`folder` of the event store, checkpoints and development key (ORDERD_DATA)")
	fs.BoolVar(&c.RelaxedSync, "relaxed-sync", c.RelaxedSync,
		"do not fsync every append: faster, but a power loss may lose acknowledged commands; for tests and benchmarks (ORDERD_RELAXED_SYNC)")
	var keys listFlag
	fs.Var(&keys, "jwt-public-key", "PEM `file` of an Ed25519 public key tokens are verified with; repeat for rotation (ORDERD_JWT_PUBLIC_KEYS, comma-separated)")
	fs.StringVar(&c.CatalogueFile, "catalogue", c.CatalogueFile, "catalogue JSON `file` replacing the embedded one (ORDERD_CATALOGUE)")
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "`host:port` for other processes to reach the embedded NATS server (ORDERD_NATS_LISTEN)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long to drain in-flight requests on SIGINT/SIGTERM (ORDERD_SHUTDOWN_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(keys) > 0 {
		c.JWTPublicKeys = keys
	}
	return c, c.Validate()
}

// Validate checks the settings, naming the first that is wrong.
func (c Config) Validate() error {
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
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout (ORDERD_SHUTDOWN_TIMEOUT) %s: must be more than zero", c.ShutdownTimeout)
	}
	return nil
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
