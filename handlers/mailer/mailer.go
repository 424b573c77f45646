// Package mailer sends the payment instructions of confirmed orders and the receipts of paid
// ones, once each, from a durable JetStream consumer of the relay's notifications; each email
// sent is recorded in the order's history (EmailSent), which is checked before sending. It
// reads the notifications contract only, and reaches the order's history through a Ledger.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	gomail "github.com/wneessen/go-mail"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// ErrPermanent marks a failure that no retry can fix (an unknown payment method, a bad
// address): the message goes to the dead letters at once.
var ErrPermanent = errors.New("mailer: permanent failure")

// Defaults of Config.
const (
	DefaultDurable           = "mailer"
	DefaultDeadLetterStream  = "MAIL_DEADLETTER"
	DefaultDeadLetterSubject = "orders.deadletter.mail"
	DefaultAttempts          = 8
)

// DefaultBackoff is the wait before each new attempt after an SMTP failure: about 20
// minutes in all before the message goes to the dead letters.
func DefaultBackoff() []time.Duration {
	return []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 3 * time.Minute, 5 * time.Minute, 10 * time.Minute}
}

// Config configures a Mailer. Ledger, Sender and From are required.
type Config struct {
	// Ledger reaches the event log: the order's history says whether an email was sent
	// already, and records each one sent. The log, not NATS, is what backups, imports and
	// replicas carry, so they never send an email twice.
	Ledger Ledger
	Sender Sender
	// From is the sender address, e.g. "Fatturazione Elettronica <noreply@example.com>".
	From string
	// MessageIDDomain is the right side of Message-IDs "<eventId@domain>". Default: From's domain.
	MessageIDDomain string

	// Stream and SubjectPrefix are where the relay publishes. Defaults
	// notifications.DefaultStream and DefaultSubjectPrefix.
	Stream        string
	SubjectPrefix string
	// Durable is the consumer's name. Default "mailer".
	Durable string
	// DeadLetterStream and DeadLetterSubject hold what could not be sent.
	DeadLetterStream  string
	DeadLetterSubject string
	// Replicas of the dead-letter stream on a cluster. Default 1.
	Replicas int

	// Attempts before a message goes to the dead letters. Default 8. The consumer itself
	// redelivers without limit, so that a message can never be dropped by the server: the
	// mailer counts the deliveries and moves the message to the dead letters itself.
	Attempts int
	// Backoff is the delay before attempt n+1 (the last entry repeats). Default DefaultBackoff().
	Backoff []time.Duration
	// AckWait is how long a delivered message may stay unacknowledged before the server
	// redelivers it (a mailer that died). Default 60 s; keep it above the SMTP timeout.
	AckWait time.Duration
	// Concurrency is how many emails are handled at once. Default 16: a worker spends most
	// of an email waiting (the SMTP server's answers, the durable append of EmailSent), and
	// with 4 the mailer fell behind 250 confirmations/s on 2 cores (p99 1.5 s; 39 ms with 16).
	Concurrency int

	// Logger. Default: no logging.
	Logger *zap.Logger
	// Registerer receives the mailer's metrics. Default: not registered.
	Registerer prometheus.Registerer
	// Now is the clock, for the Date header. Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() error {
	switch {
	case c.Ledger == nil:
		return errors.New("mailer: no access to the event log (it checks and records every email there)")
	case c.Sender == nil:
		return errors.New("mailer: no sender (SMTP or outbox)")
	case c.From == "":
		return errors.New("mailer: from address is empty")
	}
	if _, err := Message(Email{From: c.From, To: "check@example.com"}, gomail.EncodingQP); err != nil {
		return fmt.Errorf("mailer: from address %q: %w", c.From, err)
	}
	if c.MessageIDDomain == "" {
		c.MessageIDDomain = domainOf(c.From)
	}
	if c.Stream == "" {
		c.Stream = notifications.DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = notifications.DefaultSubjectPrefix
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = DefaultDeadLetterStream
	}
	if c.DeadLetterSubject == "" {
		c.DeadLetterSubject = DefaultDeadLetterSubject
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff()
	}
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func domainOf(from string) string {
	for i := len(from) - 1; i >= 0; i-- {
		if from[i] == '@' {
			d := from[i+1:]
			for j, c := range d {
				if c == '>' || c == ' ' {
					return d[:j]
				}
			}
			return d
		}
	}
	return "localhost"
}

// Mailer consumes notifications and sends emails.
type Mailer struct {
	js      jetstream.JetStream
	cfg     Config
	render  *Renderer
	metrics *Metrics
	log     *zap.Logger

	stream jetstream.Stream
}

// New checks cfg and returns a mailer; nothing touches the server until Run.
func New(js jetstream.JetStream, cfg Config) (*Mailer, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r, err := NewRenderer()
	if err != nil {
		return nil, err
	}
	met, err := NewMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Mailer{js: js, cfg: cfg, render: r, metrics: met, log: cfg.Logger}, nil
}

// Metrics returns the mailer's counters.
func (m *Mailer) Metrics() *Metrics { return m.metrics }

// Setup creates the consumer and the dead-letter stream if missing, waiting for
// the server and the notifications stream (the relay creates it) until ctx ends.
func (m *Mailer) Setup(ctx context.Context) (jetstream.Consumer, error) {
	// The relay in the same process creates the stream within milliseconds: the first
	// waits are short, so that the first emails do not wait a second for nothing.
	bo := backoff.New(backoff.Policy{Min: 20 * time.Millisecond, Max: time.Second})
	for {
		s, err := m.js.Stream(ctx, m.cfg.Stream)
		if err == nil {
			m.stream = s
			break
		}
		// Not created yet by the relay, or the server not reachable yet: wait.
		m.log.Info("waiting for the notifications stream", zap.String("stream", m.cfg.Stream), zap.Error(err))
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return nil, err
		}
	}
	if _, err := EnsureDeadLetterStream(ctx, m.js, m.cfg.DeadLetterStream, m.cfg.DeadLetterSubject, m.cfg.Replicas); err != nil {
		return nil, err
	}
	cons, err := m.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:     m.cfg.Durable,
		Description: "sends payment instructions and receipts",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     m.cfg.AckWait,
		// Unlimited on the server: the mailer dead-letters after cfg.Attempts itself, so a
		// message is never left behind by the server without a trace.
		MaxDeliver:    -1,
		MaxAckPending: max(64, 4*m.cfg.Concurrency),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubjects: []string{
			notifications.Subject(m.cfg.SubjectPrefix, notifications.TypeOrderConfirmed, "*"),
			notifications.Subject(m.cfg.SubjectPrefix, notifications.TypeOrderPaid, "*"),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mailer: consumer %s: %w", m.cfg.Durable, err)
	}
	return cons, nil
}

// Run consumes until ctx ends and returns ctx's error, or an error in setting up.
func (m *Mailer) Run(ctx context.Context) error {
	cons, err := m.Setup(ctx)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * m.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("mailer: consume: %w", err)
	}
	m.log.Info("mailer consuming", zap.String("stream", m.cfg.Stream), zap.String("durable", m.cfg.Durable))
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	// A message once started is finished even when ctx ends (the SMTP timeout bounds it):
	// stopping in the middle of a delivery would leave it unknown whether it went out.
	work := context.WithoutCancel(ctx)
	for range m.cfg.Concurrency {
		wg.Go(func() {
			for msg := range msgs {
				m.handle(work, msg)
			}
		})
	}
	runErr := m.feed(ctx, it, msgs)
	close(msgs)
	wg.Wait()
	if c, ok := m.cfg.Sender.(io.Closer); ok {
		_ = c.Close() // the SMTP connections kept open between emails
	}
	if runErr != nil {
		return runErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("mailer: consumer stopped")
}

// feed hands the consumer's messages to the workers on msgs until ctx ends (nil) or the
// consumer goes away (its error).
func (m *Mailer) feed(ctx context.Context, it jetstream.MessagesContext, msgs chan<- jetstream.Msg) error {
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-stopped: // the consumer went away first
		}
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				it.Stop()
				return fmt.Errorf("mailer: consumer %s: %w", m.cfg.Durable, err)
			}
			m.log.Warn("consumer hiccup", zap.Error(err)) // missed heartbeats: the iterator goes on
			continue
		}
		select {
		case msgs <- msg:
		case <-ctx.Done():
			_ = msg.Nak() // not started: hand it back at once
		}
	}
}

// handle sends the email of one notification, or decides it needs none, and settles the
// message: ack, nak with a delay, or dead letter.
func (m *Mailer) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		m.log.Error("message without metadata", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Nak()
		return
	}
	attempt := int(meta.NumDelivered)
	n, err := notifications.Parse(msg.Data())
	if err != nil {
		m.deadLetter(ctx, msg, n, attempt, fmt.Errorf("%w: message body: %v", ErrPermanent, err))
		return
	}
	log := m.log.With(zap.Stringer("event_id", n.EventID), zap.String("type", n.Type),
		zap.Int("version", n.Version), zap.String("correlation_id", n.CorrelationID), zap.Int("attempt", attempt))
	err = m.process(ctx, msg, n, log)
	switch {
	case err == nil:
		if err := msg.DoubleAck(ctx); err != nil {
			// The send is recorded: a redelivery will find it in the order's history.
			log.Warn("ack failed", zap.Error(err))
		}
	case errors.Is(err, ErrPermanent) || attempt >= m.cfg.Attempts:
		m.metrics.Failed.Inc()
		m.deadLetter(ctx, msg, n, attempt, err)
	default:
		m.metrics.Failed.Inc()
		delay := m.cfg.Backoff[min(attempt, len(m.cfg.Backoff))-1]
		log.Warn("email not sent, retrying", zap.Error(err), zap.Duration("in", delay))
		_ = msg.NakWithDelay(delay)
	}
}

// process sends the email for n unless the order's history shows it sent or none is due,
// then records it there.
func (m *Mailer) process(ctx context.Context, msg jetstream.Msg, n notifications.Envelope, log *zap.Logger) error {
	p, err := n.Payload()
	if err != nil {
		// A version this mailer does not read is as permanent as a malformed message: a
		// redelivery brings the same bytes. The dead letters keep it for a newer mailer.
		return fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	kind, recipient := emailFor(p)
	if kind == "" {
		m.metrics.Skipped.WithLabelValues("no_email").Inc()
		return nil
	}
	orderID := n.OrderID
	if orderID == uuid.Nil {
		return fmt.Errorf("%w: %s names no order", ErrPermanent, n.Type)
	}
	log = log.With(zap.String("order_id", orderID.String()), zap.String("kind", kind))
	// The order as the log has it now, whoever wrote last (another replica's mailer, a
	// payment): the history says whether the email went out, the state whether it is due.
	o, ok, err := m.cfg.Ledger.Order(ctx, orderID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: order %s is not in the log", ErrPermanent, orderID)
	}
	if !m.due(o, kind, log) {
		return nil
	}
	var c Content
	switch p := p.(type) {
	case notifications.OrderConfirmedV1:
		c, err = m.render.Instructions(orderID.String(), p)
	case notifications.OrderPaidV1:
		c, err = m.render.Receipt(orderID.String(), p)
	}
	if err != nil {
		return err
	}
	if recipient.Email == "" {
		return fmt.Errorf("%w: order %s has no recipient address", ErrPermanent, orderID)
	}
	return m.send(ctx, msg, n, kind, m.compose(n, kind, recipient, c), log)
}

// emailFor is the kind of email a notification's payload asks for and to whom; kind is ""
// for a payload that asks for none.
func emailFor(p any) (kind string, recipient notifications.Recipient) {
	switch p := p.(type) {
	case notifications.OrderConfirmedV1:
		return KindInstructions, p.Recipient
	case notifications.OrderPaidV1:
		return KindReceipt, p.Recipient
	}
	return "", notifications.Recipient{}
}

// due says whether the email of kind is still to send, given the order as the log has it
// now; when it is not, it counts and logs why.
func (m *Mailer) due(o OrderView, kind string, log *zap.Logger) bool {
	if told, sent := o.Emails[kind]; sent {
		m.metrics.Skipped.WithLabelValues("already_sent").Inc()
		log.Info("email already sent, skipped", zap.Time("sent_at", told.SentAt), zap.String("message_id", told.MessageID))
		return false
	}
	if kind != KindInstructions {
		return true
	}
	// Instructions only to an order still awaiting payment, and never once its last day to
	// pay has gone: a restored log, or a mailer that was down, must not ask for money that
	// can no longer be paid.
	if o.Status != StatusConfirmed {
		m.metrics.Skipped.WithLabelValues("order_" + o.Status).Inc()
		log.Info("no payment instructions: the order is " + o.Status)
		return false
	}
	if today := notifications.DateOf(m.cfg.Now()); today.After(o.PayBy) {
		m.metrics.Skipped.WithLabelValues("past_pay_by").Inc()
		log.Info("no payment instructions: the last day to pay has gone", zap.Stringer("pay_by", o.PayBy))
		return false
	}
	return true
}

// compose is the email of kind about n's order, rendered as c. Its Message-ID is the
// notification's event id, so that a resend after a crash carries the same one.
func (m *Mailer) compose(n notifications.Envelope, kind string, to notifications.Recipient, c Content) Email {
	orderID, eventID := n.OrderID.String(), n.EventID.String()
	return Email{
		ID:        eventID,
		Name:      orderID + "-" + kind,
		MessageID: eventID + "@" + m.cfg.MessageIDDomain,
		From:      m.cfg.From,
		ToName:    to.Name,
		To:        to.Email,
		Subject:   c.Subject,
		Text:      c.Text,
		HTML:      c.HTML,
		Date:      m.cfg.Now(),
		Headers: map[string]string{
			"X-Order-Id":   orderID,
			"X-Event-Id":   eventID,
			"X-Email-Kind": kind,
		},
	}
}

// send hands e, an email of kind, to the mail server and records it in the order's history.
func (m *Mailer) send(ctx context.Context, msg jetstream.Msg, n notifications.Envelope, kind string, e Email, log *zap.Logger) error {
	start := time.Now()
	if err := m.cfg.Sender.Send(ctx, e); err != nil {
		return err
	}
	m.metrics.SendSeconds.Observe(time.Since(start).Seconds())
	m.metrics.Sent.WithLabelValues(kind).Inc()
	// A crash between the server's acceptance and the record sends the email again, with
	// the same Message-ID: the README gives how often.
	if err := m.record(ctx, msg, n, n.OrderID, EmailSent{
		Kind: kind, MessageID: e.MessageID, To: e.To, SentAt: m.cfg.Now().UTC(),
	}); err != nil {
		if errors.Is(err, ErrRefused) {
			// A refusal will not change on a redelivery, which would only send it again.
			log.Error("email sent; its record was refused", zap.Error(err))
			return nil
		}
		log.Error("email sent but not recorded; a redelivery would send it again", zap.Error(err))
		return err
	}
	log.Info("email sent", zap.String("to", e.To), zap.String("message_id", e.MessageID))
	return nil
}

// recordAttempts bounds the attempts to record an email sent before the message is handed
// back (and the email, unrecorded, may be sent again).
const recordAttempts = 6

// record appends an email's fact (sent, or given up) to the order's history, retrying while
// the store does not answer. The notification is the cause: a second record of the same
// email, by this mailer or another, is recognised and writes nothing.
func (m *Mailer) record(ctx context.Context, msg jetstream.Msg, n notifications.Envelope, orderID uuid.UUID, rec EmailRecord) error {
	cause := Cause{EventID: n.EventID, CorrelationID: n.CorrelationID}
	bo := backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second})
	for attempt := 1; ; attempt++ {
		err := m.cfg.Ledger.Record(ctx, orderID, rec, cause)
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrRefused) || attempt >= recordAttempts {
			return fmt.Errorf("%T of order %s: %w", rec, orderID, err)
		}
		_ = msg.InProgress() // keep the message ours while the store recovers
		if err := backoff.Sleep(ctx, bo.Next()); err != nil {
			return err
		}
	}
}

// deadLetter keeps the message in the dead-letter stream and terminates it on the consumer.
// If the dead letter cannot be written, the message is handed back for a later attempt:
// never dropped.
func (m *Mailer) deadLetter(ctx context.Context, msg jetstream.Msg, n notifications.Envelope, attempt int, cause error) {
	// The give-up goes in the order's history first, durable like every event: on the
	// embedded server the dead-letter stream is flushed only every two minutes, and a power
	// cut after the original is terminated would otherwise leave the email nowhere.
	if n.OrderID != uuid.Nil && n.EventID != uuid.Nil {
		if kind := emailKind(n.Type); kind != "" {
			if err := m.record(ctx, msg, n, n.OrderID, EmailGivenUp{
				Kind: kind, Attempts: attempt, Reason: cause.Error(), At: m.cfg.Now().UTC(),
			}); err != nil {
				if !errors.Is(err, ErrRefused) {
					m.log.Error("give-up not recorded, retrying later", zap.Stringer("event_id", n.EventID), zap.Error(err))
					_ = msg.NakWithDelay(m.cfg.Backoff[0])
					return
				}
			}
		}
	}
	dl := nats.NewMsg(m.cfg.DeadLetterSubject)
	dl.Data = msg.Data()
	dl.Header.Set(HeaderDLSubject, msg.Subject())
	dl.Header.Set(HeaderDLError, cause.Error())
	dl.Header.Set(HeaderDLAttempts, strconv.Itoa(attempt))
	dl.Header.Set(HeaderDLFailedAt, m.cfg.Now().UTC().Format(time.RFC3339Nano))
	var opts []jetstream.PublishOpt
	if n.EventID != uuid.Nil {
		opts = append(opts, jetstream.WithMsgID("mail-"+n.EventID.String()))
	}
	if _, err := m.js.PublishMsg(ctx, dl, opts...); err != nil {
		m.log.Error("dead letter not written, retrying later", zap.Stringer("event_id", n.EventID), zap.Error(err))
		_ = msg.NakWithDelay(m.cfg.Backoff[0])
		return
	}
	m.metrics.DeadLettered.Inc()
	m.log.Error("email given up, kept in the dead letters", zap.Stringer("event_id", n.EventID),
		zap.String("type", n.Type), zap.Int("attempts", attempt), zap.Error(cause))
	if err := msg.Term(); err != nil {
		m.log.Warn("term failed", zap.Stringer("event_id", n.EventID), zap.Error(err))
	}
}

// emailKind is the kind of email a notification of type typ asks for, "" for none.
func emailKind(typ string) string {
	switch typ {
	case notifications.TypeOrderConfirmed:
		return KindInstructions
	case notifications.TypeOrderPaid:
		return KindReceipt
	}
	return ""
}
