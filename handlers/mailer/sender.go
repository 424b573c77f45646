package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
	"go.uber.org/zap"
)

// Email is one message ready to go.
type Email struct {
	// ID names the email: the id of the event it answers.
	ID string
	// Name, when set, names the outbox file "<Name>.eml" (the mailer's is
	// "<order id>-<kind>", one of each kind per order); else the file is "<ID>.eml".
	Name      string
	MessageID string // without the angle brackets: "<eventId>@<domain>"
	From      string // an RFC 5322 address, e.g. "Fatturazione Elettronica <noreply@example.com>"
	ToName    string
	To        string
	Subject   string
	Text      string
	HTML      string
	Date      time.Time
	// Headers are extra headers (X-Order-Id, X-Event-Type).
	Headers map[string]string
}

// Sender delivers an email. An error means it was not accepted and may be tried again.
type Sender interface {
	Send(ctx context.Context, e Email) error
}

// Message builds the MIME message of an email: multipart/alternative, text then HTML, its
// parts in enc (quoted-printable for SMTP, which every server takes; 8bit UTF-8 on disk,
// so that grep finds "114,68 €" in an .eml file).
func Message(e Email, enc gomail.Encoding) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithEncoding(enc))
	if err := m.From(e.From); err != nil {
		return nil, fmt.Errorf("%w: from %q: %v", ErrPermanent, e.From, err)
	}
	to, err := mail.ParseAddress(e.To)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient %q: %v", ErrPermanent, e.To, err)
	}
	// The name goes through mail.Address, which quotes or encodes it: a name cannot add
	// headers or recipients.
	to.Name = strings.Join(strings.Fields(e.ToName), " ")
	m.ToMailAddress(to)
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(e.MessageID)
	m.SetDateWithValue(e.Date)
	for k, v := range e.Headers {
		m.SetGenHeader(gomail.Header(k), v)
	}
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	return m, nil
}

// TLS modes of SMTPConfig.
const (
	TLSNone     = "none"     // plain text (a local relay or a test server)
	TLSStartTLS = "starttls" // upgrade with STARTTLS, refuse a server that cannot
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
)

// SMTPConfig says how to reach the SMTP server.
type SMTPConfig struct {
	Host string
	Port int    // default 587 (starttls), 465 (tls), 25 (none)
	TLS  string // TLSNone, TLSStartTLS (default) or TLSImplicit
	// Username and Password authenticate when Username is set (mechanism discovered from
	// the server, PLAIN or LOGIN only over TLS).
	Username string
	Password string
	// Timeout bounds one delivery, from dial to QUIT. Default 30 s.
	Timeout time.Duration
	// TLSConfig overrides the TLS settings (a private CA, tests). Default: verify Host.
	TLSConfig *tls.Config
	// HELO is the name the client gives. Default: the machine's host name.
	HELO string
	// MaxIdle is how many connections stay open between emails, for the next ones: a new
	// connection costs a TCP (and TLS) handshake, EHLO and AUTH before the first byte of
	// the email. Default 16, the mailer's default concurrency.
	MaxIdle int
	// IdleTimeout closes a connection unused for this long instead of reusing it (servers
	// drop idle sessions after a few minutes). Default 30 s.
	IdleTimeout time.Duration
}

// SMTPSender delivers through an SMTP server with go-mail. It keeps up to MaxIdle
// connections open between emails and sends each email on one of them (a new one when none
// is idle), so that several workers send at once, each on its own connection.
type SMTPSender struct {
	cfg    SMTPConfig
	client *gomail.Client

	mu   sync.Mutex
	idle []idleConn // most recently used last
}

type idleConn struct {
	c     *smtp.Client
	since time.Time
}

// NewSMTPSender checks cfg and returns a sender; errors name the setting.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if cfg.Host == "" {
		return nil, errors.New("mailer: SMTP host is empty")
	}
	if cfg.TLS == "" {
		cfg.TLS = TLSStartTLS
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = 16
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	tlsOpt, defaultPort, err := tlsMode(cfg.TLS)
	if err != nil {
		return nil, err
	}
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout), tlsOpt}
	port := cfg.Port
	if port == 0 {
		port = defaultPort
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("mailer: SMTP port %d is not in 1..65535", port)
	}
	if cfg.MaxIdle < 0 {
		return nil, fmt.Errorf("mailer: SMTP idle connections %d is negative", cfg.MaxIdle)
	}
	opts = append(opts, gomail.WithPort(port))
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	cfg.Port = port
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: SMTP client for %s: %w", cfg.Host, err)
	}
	return &SMTPSender{cfg: cfg, client: c}, nil
}

// tlsMode is the client option of a TLS mode and the port the mode is served on by custom.
func tlsMode(mode string) (gomail.Option, int, error) {
	switch mode {
	case TLSNone:
		return gomail.WithTLSPortPolicy(gomail.NoTLS), 25, nil
	case TLSStartTLS:
		return gomail.WithTLSPortPolicy(gomail.TLSMandatory), 587, nil
	case TLSImplicit:
		return gomail.WithSSL(), 465, nil
	}
	return nil, 0, fmt.Errorf("mailer: SMTP TLS mode %q is not none, starttls or tls", mode)
}

// Send delivers e; nil means the server accepted it.
func (s *SMTPSender) Send(ctx context.Context, e Email) error {
	m, err := Message(e, gomail.EncodingQP)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, reused := s.take()
	if conn != nil {
		// go-mail checks a connection with NOOP before the email: a session the server
		// closed meanwhile fails there, before anything of the email is sent.
		err = s.client.SendWithSMTPClient(conn, m)
		if err == nil || m.IsDelivered() {
			s.settle(conn, err)
			return nil
		}
		// Refused on a connection that had served other emails: the session may be what
		// failed (a server's limit of emails per session, an idle timeout), so the email
		// gets one more try on a new connection; the server accepted nothing of it.
		_ = conn.Close()
	}
	conn, err = s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("smtp %s:%d: dial: %w", s.cfg.Host, s.cfg.Port, err)
	}
	err = s.client.SendWithSMTPClient(conn, m)
	if m.IsDelivered() {
		// Accepted: an error after the acceptance (the RSET that readies the session for
		// the next email) must not make the mailer send it again.
		s.settle(conn, err)
		return nil
	}
	_ = conn.Close()
	if reused {
		return fmt.Errorf("smtp %s:%d (on a new connection, after a kept one failed): %w", s.cfg.Host, s.cfg.Port, err)
	}
	return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
}

// take returns the most recently used idle connection, closing those idle too long; nil
// when there is none.
func (s *SMTPSender) take() (*smtp.Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		ic := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(ic.since) < s.cfg.IdleTimeout {
			return ic.c, true
		}
		_ = ic.c.Close()
	}
	return nil, false
}

// settle keeps conn for the next email after a delivery that left its session clean, or
// closes it.
func (s *SMTPSender) settle(conn *smtp.Client, sendErr error) {
	if sendErr == nil {
		s.mu.Lock()
		if len(s.idle) < s.cfg.MaxIdle {
			s.idle = append(s.idle, idleConn{c: conn, since: time.Now()})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		_ = s.client.CloseWithSMTPClient(conn) // QUIT: one connection too many
		return
	}
	_ = conn.Close()
}

// Close ends the idle connections with QUIT. The sender stays usable: the next email
// opens a new connection.
func (s *SMTPSender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	var errs []error
	for _, ic := range idle {
		if err := s.client.CloseWithSMTPClient(ic.c); err != nil {
			errs = append(errs, err)
			_ = ic.c.Close()
		}
	}
	return errors.Join(errs...)
}

// Outbox writes each email as an .eml file in a folder, for when no SMTP server is set.
type Outbox struct {
	dir string
	tmp string // a small folder of files being written, beside the emails
	log *zap.Logger

	// A folder fsync makes every rename before it durable: concurrent Sends share one
	// (group commit), collected in next while a leader runs the one before.
	mu      sync.Mutex
	next    *dirSync
	syncing bool
}

type dirSync struct {
	done    chan struct{}
	err     error
	members int
}

// syncFolder fsyncs a folder (a variable for the test that counts them).
var syncFolder = syncPath

// outboxTmp is the outbox's subfolder for files being written. Creating a file with a
// random name in a folder of thousands of emails cost ext4 most of the outbox's CPU; in a
// folder of a few files it is cheap, and a rename moves the finished file into place.
const outboxTmp = ".tmp"

// NewOutbox creates dir if needed, and clears what a crash left half-written.
func NewOutbox(dir string, log *zap.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("mailer: outbox folder is empty")
	}
	tmp := filepath.Join(dir, outboxTmp)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("mailer: outbox folder: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	// An hour old: no Send of another process sharing the folder is still writing it.
	if entries, err := os.ReadDir(tmp); err == nil {
		for _, e := range entries {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				_ = os.Remove(filepath.Join(tmp, e.Name()))
			}
		}
	}
	return &Outbox{dir: dir, tmp: tmp, log: log}, nil
}

// Path is where the email named name (Email.Name, else its ID) is written.
func (o *Outbox) Path(name string) string { return filepath.Join(o.dir, name+".eml") }

// Send writes the email atomically and durably: a temporary file, synced, renamed into
// place, then the folder synced (once for all the Sends renamed meanwhile). A reader never
// sees half an email, a second write of the same id replaces the first, and once Send
// returns (and the mailer records the email as sent) a power cut cannot take it back.
func (o *Outbox) Send(_ context.Context, e Email) error {
	name := e.Name
	if name == "" {
		name = e.ID
	}
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w: email name %q cannot name a file", ErrPermanent, name)
	}
	m, err := Message(e, gomail.NoEncoding)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(o.tmp, name+"-*")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	tmp := f.Name()
	_, err = m.WriteTo(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, o.Path(name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox: write %s: %w", o.Path(name), err)
	}
	if err := o.syncDir(); err != nil {
		return fmt.Errorf("outbox: sync %s after writing %s: %w", o.dir, name, err)
	}
	o.log.Info("email written to the outbox", zap.String("path", o.Path(name)),
		zap.String("to", e.To), zap.String("subject", e.Subject))
	return nil
}

// syncDir returns once the folder has been fsynced after the caller's rename: it joins the
// batch that has not started yet, and the first caller to find none running runs batches
// until none waits.
func (o *Outbox) syncDir() error {
	o.mu.Lock()
	if o.next == nil {
		o.next = &dirSync{done: make(chan struct{})}
	}
	mine := o.next
	mine.members++
	if !o.syncing {
		o.syncing = true
		for o.next != nil {
			b := o.next
			o.next = nil // later renames join a new batch: this one's fsync may miss them
			o.mu.Unlock()
			b.err = syncFolder(o.dir)
			close(b.done)
			o.mu.Lock()
		}
		o.syncing = false
	}
	o.mu.Unlock()
	<-mine.done
	return mine.err
}

func syncPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
