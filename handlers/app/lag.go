package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// lagCollector exposes how far each follower of the log is behind its head, read when
// Prometheus scrapes: spaceorders_follower_lag{follower} and _position{follower}.
type lagCollector struct {
	a             *App
	lag, position *prometheus.Desc
}

func newLagCollector(a *App) *lagCollector {
	return &lagCollector{a: a,
		lag: prometheus.NewDesc("spaceorders_follower_lag",
			"How far a follower is behind: for the read models, the process manager and the relay, the log's head minus their position (commits on JetStream, log bytes on KurrentDB, whose positions are offsets); for the mailer, the notifications it has still to handle.",
			[]string{"follower"}, nil),
		position: prometheus.NewDesc("spaceorders_follower_position",
			"The log position a follower has handled up to.", []string{"follower"}, nil),
	}
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.position
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.a.Store.Head(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.lag, err)
		return
	}
	emit := func(follower string, pos uint64) {
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(pos), follower)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(head-min(pos, head)), follower)
	}
	for name, pos := range c.a.Projections.Positions() {
		emit("projections/"+name, pos)
	}
	emit("purchases", c.a.Purchases.Position())
	emit("relay", c.a.Relay.Position())
	if c.a.Mailer != nil {
		// The mailer follows the notifications, not the log: its lag is what it has still
		// to handle there.
		if n, err := c.a.Mailer.Pending(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(n), "mailer")
		}
	}
}
