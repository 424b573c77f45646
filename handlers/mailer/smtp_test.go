package mailer_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/einvoice/spaceorders/internal/testwait"
)

// smtpServer is a real SMTP server on loopback (go-smtp), keeping what it accepts.
type smtpServer struct {
	t    testing.TB
	srv  *smtp.Server
	addr string

	mu       sync.Mutex
	received []received
	// reject, when set, answers a temporary failure to every DATA.
	reject bool
	// notify gets each message as it is accepted (when set).
	notify chan received
	// holdAt > 0 holds the DATA of the holdAt-th email: held is closed when it arrives,
	// and once release is closed the email is refused (its sender died meanwhile).
	holdAt  int
	held    chan struct{}
	release chan struct{}
	// delay is how long the server takes to answer a DATA it accepts (a slow relay).
	delay time.Duration
	// sessions counts the connections the server has taken.
	sessions int
}

type received struct {
	From    string
	To      []string
	Raw     []byte
	At      time.Time
	Header  mail.Header
	Subject string
	Text    string
	HTML    string
}

func startSMTP(t testing.TB) *smtpServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveSMTP(t, l)
}

// startSMTPAt starts the server on a given address (to bring a server "back up").
func startSMTPAt(t testing.TB, addr string) *smtpServer {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveSMTP(t, l)
}

func serveSMTP(t testing.TB, l net.Listener) *smtpServer {
	s := &smtpServer{t: t, addr: l.Addr().String()}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.sessions++
		s.mu.Unlock()
		return &session{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	s.srv = srv
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) hostPort() (string, int) {
	h, p, _ := net.SplitHostPort(s.addr)
	var port int
	for _, c := range p {
		port = port*10 + int(c-'0')
	}
	return h, port
}

func (s *smtpServer) setReject(v bool) {
	s.mu.Lock()
	s.reject = v
	s.mu.Unlock()
}

func (s *smtpServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.received...)
}

// waitN waits until n messages arrived.
func (s *smtpServer) waitN(t testing.TB, n int, within time.Duration) []received {
	t.Helper()
	var got []received
	testwait.CheckWithin(t, within, fmt.Sprintf("%d emails on the SMTP server", n), func() error {
		if got = s.messages(); len(got) < n {
			return fmt.Errorf("%d so far", len(got))
		}
		return nil
	})
	return got
}

type session struct {
	s    *smtpServer
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	reject, delay := x.s.reject, x.s.delay
	hold := x.s.holdAt > 0 && len(x.s.received)+1 == x.s.holdAt
	if hold {
		x.s.holdAt = 0
	}
	x.s.mu.Unlock()
	if hold {
		close(x.s.held)
		<-x.s.release
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "not accepted"}
	}
	if reject {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	if delay > 0 {
		// Accepted, but the answer is slow to come: a sender that dies meanwhile never
		// learns that it went out. A slow server is the scenario, not a wait.
		time.Sleep(delay)
	}
	m := received{From: x.from, To: x.to, Raw: raw, At: time.Now()}
	if err := parse(&m); err != nil {
		x.s.t.Errorf("unparsable email: %v\n%s", err, raw)
	}
	x.s.mu.Lock()
	x.s.received = append(x.s.received, m)
	ch := x.s.notify
	x.s.mu.Unlock()
	if ch != nil {
		ch <- m
	}
	return nil
}

// parse reads the headers and the text and HTML parts of a multipart/alternative email.
func parse(m *received) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	dec := new(mime.WordDecoder)
	if m.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	if mt != "multipart/alternative" {
		return errors.New("content type " + mt)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			m.Text = string(b)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			m.HTML = string(b)
		}
	}
	if m.Text == "" || m.HTML == "" {
		return errors.New("missing text or HTML part")
	}
	return nil
}
