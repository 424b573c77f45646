package jetstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
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
	// Logger receives the start-up report and the server's own warnings and errors.
	// Default: no logging.
	Logger *zap.Logger
	// Users may connect with a name and password. None (and no NKeys): anyone who
	// reaches Listen may connect, so a listener beyond loopback must have credentials.
	Users []User
	// NKeys are public user nkeys ("U..."), proved with the matching seed, that may connect.
	NKeys []string
	// ConnectOptions are added to the in-process connection: its credentials when Users or
	// NKeys are set (the server asks them of every client, in-process ones too).
	ConnectOptions []nats.Option
	// RecoverEvery is how often a store that stopped writing for lack of space checks
	// whether space has been freed. Default 1 s.
	RecoverEvery time.Duration
	// MinFreeBytes is the free space a full disk must have again before writing resumes.
	// Default 1 MiB.
	MinFreeBytes uint64
}

// User is a NATS user name and password.
type User struct {
	Name     string
	Password string
}

// DefaultMaxPayload is the embedded server's default max message size.
const DefaultMaxPayload = 8 << 20

// Embedded is a running in-process NATS server with JetStream and a connection to it.
// Other parts (relay, mailer) may create their own JetStream streams through Conn.
//
// A single server that fails to write for lack of space logs it, never answers the
// publish, and refuses every later write of that stream until it is restarted. Embedded
// watches the server's log for that, reports it (WriteErr, Watch: a Store given this as
// its Options.Faults answers eventstore.ErrNoSpace at once instead of timing out), and
// once space is freed restarts JetStream inside the same server, so that writing resumes
// without a restart of the process and every connection stays open.
type Embedded struct {
	lock   *os.File // held on Dir while the server runs
	Server *server.Server
	// Conn is an in-process connection (no TCP): about 1.85x faster than loopback.
	Conn *nats.Conn

	// groupCommit: a Store on Conn fsyncs its stream itself (unless RelaxedSync).
	groupCommit bool
	// restarts counts JetStream restarts: the server reopens its files, and a Store's
	// group commit opens them again (groupcommit.go).
	restarts atomic.Uint64
	cfg      EmbeddedConfig
	log      *zap.Logger
	quit     chan struct{} // closed by Close: stops the recovery
	wg       sync.WaitGroup

	// restarting is held (written) while JetStream restarts after a full disk: in-process
	// connections wait on it to connect again, so that no client's request reaches the
	// server's JetStream API while it is torn down and rebuilt (the server does not guard
	// that against its own clients: the race detector sees it).
	restarting sync.RWMutex

	mu sync.Mutex
	// fault is nil while the store can write; else why not (wraps eventstore.ErrNoSpace).
	fault error
	// faulted is cancelled, with the fault as its cause, when the next fault is found.
	faulted    context.Context
	raiseFault context.CancelCauseFunc
	recovering bool
}

// StartEmbedded starts a NATS server with JetStream file storage in cfg.Dir and connects
// to it in-process. Close stops both.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("jetstream: embedded server needs a directory")
	}
	cfg.defaults()
	log := cfg.Logger
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
	opts, err := cfg.serverOptions()
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("jetstream: new embedded server: %w", err)
	}
	e := &Embedded{lock: lock, Server: ns, cfg: cfg, log: log, quit: make(chan struct{})}
	e.faulted, e.raiseFault = context.WithCancelCause(context.Background())
	defer func() {
		if !started {
			e.stopRecovery()
		}
	}()
	// Warnings and errors only: the server's notices are its start-up banner.
	ns.SetLogger(&serverLog{log: log.Named("nats-server"), noSpace: e.noSpace}, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(cfg.StartTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("jetstream: embedded server in %s not ready within %s", cfg.Dir, cfg.StartTimeout)
	}
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(gatedServer{e}), nats.Name(cfg.ServerName + "-inprocess"),
		// The server lives as long as this connection, but drops it on purpose once
		// JetStream is restarted after a full disk (see recoverWrites): reconnect at once.
		nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}, cfg.ConnectOptions...)...)
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("jetstream: connect in-process: %w", err)
	}
	e.Conn = nc
	e.groupCommit = !cfg.RelaxedSync
	registerEmbedded(e)
	started = true
	log.Info("embedded NATS JetStream started",
		zap.String("dir", cfg.Dir),
		zap.Bool("fsync_appends", e.Durable()),
		zap.String("client_url", e.ClientURL()))
	return e, nil
}

// defaults fills what the configuration left zero.
func (cfg *EmbeddedConfig) defaults() {
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "spaceorders"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.RecoverEvery <= 0 {
		cfg.RecoverEvery = time.Second
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
}

// serverOptions are the server's: one process, one server, JetStream in Dir, and the
// listener and users cfg asks for.
func (cfg *EmbeddedConfig) serverOptions() (*server.Options, error) {
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
	for _, u := range cfg.Users {
		// The server keeps and compares a bcrypt hash (and warns about a plain password).
		// The hash lives only in this process's memory, never on disk, so its cost buys
		// little; at the default cost every connection's handshake spent ~100 ms (seconds
		// under the race detector, past the client's connect timeout) comparing it.
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("jetstream: password of NATS user %q: %w", u.Name, err)
		}
		opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: string(hash)})
	}
	for _, k := range cfg.NKeys {
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: k})
	}
	return opts, nil
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

// Close closes the connection and shuts the server down, waiting until its files are closed
// so that the same Dir can be opened again at once.
func (e *Embedded) Close() error {
	unregisterEmbedded(e)
	e.stopRecovery()
	e.Conn.Close()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	return e.lock.Close()
}

// stopRecovery stops a recovery that runs and keeps another from starting.
func (e *Embedded) stopRecovery() {
	// Under mu, so that noSpace either sees quit closed or has started its recovery,
	// which Wait then waits for.
	e.mu.Lock()
	select {
	case <-e.quit:
	default:
		close(e.quit)
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// WriteErr is nil while the store can write, else why not: an error wrapping
// eventstore.ErrNoSpace from the moment the server fails a write for lack of space until
// writing has resumed.
func (e *Embedded) WriteErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fault
}

// Watch returns a context derived from ctx that is cancelled, with the fault as its cause
// (context.Cause), when the server fails a write for lack of space: a publish the server
// will never answer then ends at once.
func (e *Embedded) Watch(ctx context.Context) (context.Context, context.CancelFunc) {
	e.mu.Lock()
	faulted := e.faulted
	e.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(faulted, func() { cancel(context.Cause(faulted)) })
	return ctx, func() { stop(); cancel(nil) }
}

// noSpace records that the server failed a write for lack of space, wakes the writes
// waiting on it, and starts the recovery (once).
func (e *Embedded) noSpace(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fault == nil {
		e.fault = fmt.Errorf("%w: %s", eventstore.ErrNoSpace, msg)
		e.raiseFault(e.fault)
	}
	if e.recovering {
		return
	}
	select {
	case <-e.quit:
		return
	default:
	}
	e.recovering = true
	e.wg.Add(1)
	go e.recoverWrites()
}

// recoverWrites waits until the data folder has MinFreeBytes free again, then restarts
// JetStream in the running server: the streams are opened afresh from their files, which
// clears the write error the server keeps until then. A restart that fails is tried again,
// with a delay that doubles, with jitter, up to 30 s.
func (e *Embedded) recoverWrites() {
	defer e.wg.Done()
	log := e.log.Named("recovery")
	log.Error("the event store stopped writing: no space left in its folder; writing resumes by itself once space is freed",
		zap.String("dir", e.cfg.Dir), zap.Uint64("needs_free_bytes", e.cfg.MinFreeBytes))
	// Free space is looked at every RecoverEvery; after a restart that fails, the wait
	// doubles (with jitter) up to 30 s.
	wait, bo := e.cfg.RecoverEvery, backoff.New(backoff.Policy{Min: 2 * e.cfg.RecoverEvery, Max: 30 * time.Second})
	for {
		select {
		case <-e.quit:
			return
		case <-time.After(wait):
		}
		free, err := freeBytes(e.cfg.Dir)
		if err != nil {
			log.Warn("free space of the data folder", zap.Error(err))
			continue
		}
		if free < e.cfg.MinFreeBytes {
			continue
		}
		// Clients are dropped first and come back once JetStream runs again: their
		// consumers went away with the old JetStream, and a client would otherwise notice
		// only when heartbeats are missed (5 to 30 s later).
		e.restarting.Lock()
		e.disconnectClients()
		err = e.restartJetStream()
		e.restarting.Unlock()
		if err != nil {
			wait = bo.Next()
			log.Error("restarting JetStream after space was freed", zap.Error(err), zap.Duration("next_try", wait))
			continue
		}
		e.mu.Lock()
		e.fault = nil
		e.faulted, e.raiseFault = context.WithCancelCause(context.Background())
		e.recovering = false
		e.mu.Unlock()
		log.Info("the event store writes again", zap.Uint64("free_bytes", free))
		return
	}
}

// restartJetStream shuts JetStream down and enables it again with the configuration it
// ran with. Clients stay connected; the server's JetStream API answers again once done.
func (e *Embedded) restartJetStream() error {
	cfg := e.Server.JetStreamConfig()
	if cfg != nil {
		if err := e.Server.ShutdownJetStream(); err != nil {
			return fmt.Errorf("shut JetStream down: %w", err)
		}
	}
	// EnableJetStream puts the "jetstream" folder under StoreDir itself: hand it the folder
	// the server was started with, and no limits, so that they are measured again.
	next := &server.JetStreamConfig{StoreDir: e.cfg.Dir} // no SyncAlways: see groupcommit.go
	if cfg != nil {
		next.SyncInterval = cfg.SyncInterval
	}
	if err := e.Server.EnableJetStream(next); err != nil {
		return fmt.Errorf("enable JetStream: %w", err)
	}
	e.restarts.Add(1)
	return nil
}

// gatedServer hands in-process connections out of the server, waiting while JetStream
// restarts.
type gatedServer struct{ e *Embedded }

func (g gatedServer) InProcessConn() (net.Conn, error) {
	g.e.restarting.RLock()
	defer g.e.restarting.RUnlock()
	return g.e.Server.InProcessConn()
}

// disconnectClients drops every client connection, in-process ones too; each reconnects
// by itself. A client on the network listener may come back before the restart is over:
// only in-process clients (orderd's own parts) wait for it.
func (e *Embedded) disconnectClients() {
	connz, err := e.Server.Connz(&server.ConnzOptions{Limit: math.MaxInt32})
	if err != nil {
		e.log.Warn("listing the NATS clients to reconnect them", zap.Error(err))
		return
	}
	for _, c := range connz.Conns {
		_ = e.Server.DisconnectClientByID(c.Cid) // one that left meanwhile is no matter
	}
}

func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// serverLog is the embedded server's server.Logger: its warnings and errors go to zap,
// and a write that failed for lack of space is reported to noSpace. The server's log is
// the only place a single server says so (it tests errors the same way: isOutOfSpaceErr).
type serverLog struct {
	log     *zap.Logger
	noSpace func(msg string)
}

var noSpaceText = syscall.ENOSPC.Error() // "no space left on device"

func (l *serverLog) check(msg string) {
	if strings.Contains(msg, noSpaceText) {
		l.noSpace(msg)
	}
}

func (l *serverLog) Noticef(format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, ""); ce != nil {
		ce.Message = fmt.Sprintf(format, v...)
		ce.Write()
	}
}

func (l *serverLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Warn(msg)
	l.check(msg)
}

func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.check(msg)
}

// Fatalf: the server stops what it was doing (it does not exit the process through a
// logger it was given); the caller sees the effect, e.g. a server that never gets ready.
func (l *serverLog) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any) {}
func (l *serverLog) Tracef(format string, v ...any) {}
