package jetstream

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// EmbeddedConfig configures the in-process NATS server.
type EmbeddedConfig struct {
	// Dir is where JetStream keeps its files. Required: an empty StoreDir would make the
	// server fall back to a temporary folder shared by every process on the machine.
	Dir string
	// Listen is "host:port" for other processes (a separate mailer, the nats CLI) to
	// connect to, e.g. "127.0.0.1:-1" for a free port. Empty: no network listener at all,
	// only in-process connections.
	Listen string
	// RelaxedSync turns off the fsync of appends altogether. JetStream's own default fsyncs
	// only every 2 minutes, and Jepsen (NATS 2.12.1, December 2025) showed acknowledged writes
	// lost on an OS crash or power failure because of it. So unless this is set, a Store
	// opened on Conn answers an append only once it is on disk, fsyncing the events stream's
	// files itself for every group of concurrent appends (group commit: see groupcommit.go);
	// the server itself runs without SyncAlways. Set it only for tests, benchmarks and
	// prefills, where losing the last writes on a crash does not matter.
	RelaxedSync bool
	// MaxPayload is the largest message the server accepts. Default 8 MiB, so that a commit
	// holding an event with an eventstore.MaxPayload (1 MiB) payload fits.
	MaxPayload int32
	// ServerName names the server in logs and monitoring. Default "spaceorders".
	ServerName string
	// StartTimeout bounds the wait for the server to accept connections. Default 10 s.
	StartTimeout time.Duration
	// Logger receives one line at start. Default: no logging.
	Logger *zap.Logger
}

// DefaultMaxPayload is the embedded server's default max message size.
const DefaultMaxPayload = 8 << 20

// Embedded is a running in-process NATS server with JetStream and a connection to it.
// Other parts (relay, mailer) may create their own JetStream streams through Conn.
type Embedded struct {
	lock   *os.File // held on Dir while the server runs
	Server *server.Server
	// Conn is an in-process connection (no TCP): about 1.85x faster than loopback.
	Conn *nats.Conn

	// groupCommit: a Store on Conn fsyncs its stream itself (unless RelaxedSync).
	groupCommit bool
}

// StartEmbedded starts a NATS server with JetStream file storage in cfg.Dir and connects
// to it in-process. Close stops both.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("jetstream: embedded server needs a directory")
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "spaceorders"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			lock.Close()
		}
	}()
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		// Without NoSigs the server traps SIGINT/SIGTERM and exits the whole process.
		NoSigs:     true,
		SyncAlways: false, // a Store on Conn fsyncs per group of appends (groupcommit.go)
		MaxPayload: cfg.MaxPayload,
		DontListen: cfg.Listen == "",
		// No HTTP monitoring, no cluster: one process, one server.
		HTTPPort: 0,
	}
	if opts.MaxPending < int64(cfg.MaxPayload)*4 {
		opts.MaxPending = max(int64(cfg.MaxPayload)*4, server.MAX_PENDING_SIZE)
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("jetstream: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("jetstream: listen port %q: %w", port, err)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("jetstream: new embedded server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(cfg.StartTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("jetstream: embedded server in %s not ready within %s", cfg.Dir, cfg.StartTimeout)
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name(cfg.ServerName+"-inprocess"),
		// The in-process server lives as long as this connection: nothing to reconnect to.
		nats.NoReconnect())
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("jetstream: connect in-process: %w", err)
	}
	e := &Embedded{lock: lock, Server: ns, Conn: nc, groupCommit: !cfg.RelaxedSync}
	registerEmbedded(e)
	started = true
	log.Info("embedded NATS JetStream started",
		zap.String("dir", cfg.Dir),
		zap.Bool("fsync_appends", e.Durable()),
		zap.String("client_url", e.ClientURL()))
	return e, nil
}

// ClientURL is the URL other processes connect to, or "" when the server does not listen.
func (e *Embedded) ClientURL() string {
	if e.Server.Addr() == nil {
		return ""
	}
	return e.Server.ClientURL()
}

// Durable reports whether a Store opened on Conn answers an append only once it is on disk
// (group commit), that is, whether RelaxedSync is off.
func (e *Embedded) Durable() bool { return e.groupCommit }

// SyncAlways reports whether the server itself fsyncs every write: never for the embedded
// server, whose event store fsyncs its own stream (Durable).
func (e *Embedded) SyncAlways() bool {
	c := e.Server.JetStreamConfig()
	return c != nil && c.SyncAlways
}

// Close closes the connection and shuts the server down, waiting until its files are closed
// so that the same Dir can be opened again at once.
func (e *Embedded) Close() error {
	unregisterEmbedded(e)
	e.Conn.Close()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	return e.lock.Close()
}
