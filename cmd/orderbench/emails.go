package main

import (
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// emailClock measures, with orderd's mailer sending to it (orderd --smtp-host), the time from
// a command's acknowledgement (ConfirmOrder for the payment instructions, RegisterPayment
// for the receipt) to the SMTP server's acceptance of the email's DATA.
type emailClock struct {
	mu      sync.Mutex
	acked   map[string]time.Time // "<order id>/<kind>" -> the command's answer
	arrived map[string]time.Time
	last    time.Time
	srv     *smtp.Server
}

func startEmailClock(addr string) (*emailClock, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("smtp sink: %w", err)
	}
	c := &emailClock{acked: map[string]time.Time{}, arrived: map[string]time.Time{}}
	c.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{c}, nil }))
	c.srv.Domain = "localhost"
	c.srv.ReadTimeout, c.srv.WriteTimeout = time.Minute, time.Minute
	go func() { _ = c.srv.Serve(l) }()
	return c, nil
}

// mark records the acknowledgement of the command after which the email of kind is due.
func (c *emailClock) mark(orderID, kind string) {
	if c == nil {
		return
	}
	now := time.Now()
	c.mu.Lock()
	c.acked[orderID+"/"+kind] = now
	c.mu.Unlock()
}

type sinkSession struct{ c *emailClock }

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s sinkSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, m.Body); err != nil {
		return err
	}
	now := time.Now()
	s.c.mu.Lock()
	s.c.arrived[m.Header.Get("X-Order-Id")+"/"+m.Header.Get("X-Email-Kind")] = now
	s.c.last = now
	s.c.mu.Unlock()
	return nil
}

// report waits until no email has arrived for quiet (the mailer has caught up), then
// prints the latencies by kind.
func (c *emailClock) report(quiet time.Duration) {
	for {
		c.mu.Lock()
		idle := time.Since(c.last)
		c.mu.Unlock()
		if idle >= quiet {
			break
		}
		time.Sleep(quiet - idle)
	}
	_ = c.srv.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	byKind := map[string][]time.Duration{}
	var first, last time.Time
	for k, at := range c.arrived {
		t0, ok := c.acked[k]
		if !ok {
			continue // an email for a command whose answer the client did not get
		}
		kind := k[len(k)-len("receipt"):]
		if kind != "receipt" {
			kind = "instructions"
		}
		byKind[kind] = append(byKind[kind], at.Sub(t0))
		byKind["all"] = append(byKind["all"], at.Sub(t0))
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	fmt.Printf("\nemails: command acknowledged (ConfirmOrder for the instructions, RegisterPayment for the receipt) -> SMTP DATA accepted\n")
	fmt.Printf("%-22s %9s %10s %10s %10s\n", "email", "count", "p50", "p99", "max")
	for _, kind := range []string{"instructions", "receipt", "all"} {
		l := byKind[kind]
		slices.Sort(l)
		var mx time.Duration
		if len(l) > 0 {
			mx = l[len(l)-1]
		}
		fmt.Printf("%-22s %9d %10s %10s %10s\n", kind, len(l), pct(l, .5).Round(time.Microsecond), pct(l, .99).Round(time.Microsecond), mx.Round(time.Microsecond))
	}
	if n := len(byKind["all"]); n > 1 {
		fmt.Printf("emails accepted: %d in %s (%.0f/s)\n", n, last.Sub(first).Round(time.Millisecond), float64(n)/last.Sub(first).Seconds())
	}
}
