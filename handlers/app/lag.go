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
			"How far a follower of the log is behind its head: commits on JetStream, log bytes on KurrentDB (positions there are offsets).",
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
	for _, m := range c.a.Projections.Status(ctx) {
		emit("projections/"+m.Name, m.Position)
	}
	emit("purchases", c.a.Purchases.Position())
}
