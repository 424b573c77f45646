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
	"time"

	gomail "github.com/wneessen/go-mail"
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
}

// SMTPSender delivers through an SMTP server with go-mail, one connection per email.
type SMTPSender struct {
	cfg  SMTPConfig
	opts []gomail.Option
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
	opts := []gomail.Option{gomail.WithTimeout(cfg.Timeout)}
	port := cfg.Port
	switch cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.NoTLS))
		if port == 0 {
			port = 25
		}
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPortPolicy(gomail.TLSMandatory))
		if port == 0 {
			port = 587
		}
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
		if port == 0 {
			port = 465
		}
	default:
		return nil, fmt.Errorf("mailer: SMTP TLS mode %q is not none, starttls or tls", cfg.TLS)
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("mailer: SMTP port %d is not in 1..65535", port)
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
	s := &SMTPSender{cfg: cfg, opts: opts}
	if _, err := s.client(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *SMTPSender) client() (*gomail.Client, error) {
	c, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return nil, fmt.Errorf("mailer: SMTP client for %s: %w", s.cfg.Host, err)
	}
	return c, nil
}

// Send delivers e; nil means the server accepted it.
func (s *SMTPSender) Send(ctx context.Context, e Email) error {
	m, err := Message(e, gomail.EncodingQP)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

// Outbox writes each email as an .eml file in a folder, for when no SMTP server is set.
type Outbox struct {
	dir string
	log *zap.Logger
}

// NewOutbox creates dir if needed.
func NewOutbox(dir string, log *zap.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("mailer: outbox folder is empty")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("mailer: outbox folder: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Outbox{dir: dir, log: log}, nil
}

// Path is where the email named name (Email.Name, else its ID) is written.
func (o *Outbox) Path(name string) string { return filepath.Join(o.dir, name+".eml") }

// Send writes the email atomically: a temporary file, synced, then renamed into place, so
// a reader never sees half an email and a second write of the same id replaces the first.
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
	f, err := os.CreateTemp(o.dir, ".tmp-"+name+"-*")
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
	// The rename itself is durable only once the folder is synced.
	if d, err := os.Open(o.dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	o.log.Info("email written to the outbox", zap.String("path", o.Path(name)),
		zap.String("to", e.To), zap.String("subject", e.Subject))
	return nil
}
