package mailer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the mailer's Prometheus series.
type Metrics struct {
	Sent         *prometheus.CounterVec // by kind
	Failed       prometheus.Counter     // failed attempts (each retry counts)
	DeadLettered prometheus.Counter
	Skipped      *prometheus.CounterVec // by reason: already_sent, order_paid, ...
	SendSeconds  prometheus.Histogram
}

// NewMetrics builds the series and registers them on reg when it is not nil. Registering
// twice on one registry (two mailers in one process) reuses the series already there.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailer_emails_sent_total", Help: "Emails accepted by the SMTP server or written to the outbox.",
		}, []string{"kind"}),
		Failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailer_emails_failed_total", Help: "Attempts to send an email that failed.",
		}),
		DeadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mailer_emails_deadlettered_total", Help: "Emails given up and kept in the dead-letter stream.",
		}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mailer_emails_skipped_total", Help: "Notifications that needed no email, by reason.",
		}, []string{"reason"}),
		SendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mailer_send_seconds", Help: "Time to hand one email to the SMTP server or the outbox.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.Sent, err = register(reg, m.Sent); err != nil {
		return nil, err
	}
	if m.Failed, err = register(reg, m.Failed); err != nil {
		return nil, err
	}
	if m.DeadLettered, err = register(reg, m.DeadLettered); err != nil {
		return nil, err
	}
	if m.Skipped, err = register(reg, m.Skipped); err != nil {
		return nil, err
	}
	if m.SendSeconds, err = register(reg, m.SendSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("mailer: metrics: %w", err)
	}
	return c, nil
}
