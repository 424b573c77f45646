package command

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/einvoice/spaceorders/domain"
)

type metrics struct {
	commands  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	conflicts *prometheus.CounterVec
	retries   *prometheus.CounterVec
	checks    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_commands_total", Help: "Commands handled, by command and outcome.",
		}, []string{"command", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "orders_command_duration_seconds", Help: "Time to load, decide and append a command.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"command"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_version_conflicts_total", Help: "Appends refused because the aggregate had moved on.",
		}, []string{"category"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_command_retries_total", Help: "Commands decided again after a version conflict.",
		}, []string{"category"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orders_cache_checks_total",
			Help: "Cached aggregate states checked against the stream's last version (other writers may exist), by whether they were current.",
		}, []string{"category", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.commands, m.latency, m.conflicts, m.retries, m.checks)
	}
	return m
}

func (m *metrics) observe(command string, err error, d time.Duration) {
	m.commands.WithLabelValues(command, outcome(err)).Inc()
	m.latency.WithLabelValues(command).Observe(d.Seconds())
}

// outcome is a small closed set of labels: a refusal's code would be too many series.
func outcome(err error) string {
	if err == nil {
		return "accepted"
	}
	if de, ok := domain.AsError(err); ok {
		switch de.Kind {
		case domain.Invalid:
			return "invalid"
		case domain.NotFound:
			return "not_found"
		default:
			return "wrong_state"
		}
	}
	switch {
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrPreconditionFailed):
		return "precondition_failed"
	}
	return "error"
}
