package mailer_test

import (
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/notifications"
	"github.com/einvoice/spaceorders/handlers/relay"
)

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func readDir(p string) ([]string, error) {
	es, err := os.ReadDir(p)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names, err
}

// natsMsg copies a stored message for publishing again, without its message id and the
// relay's expectation of the stream's last sequence.
func natsMsg(m *jetstream.RawStreamMsg) *nats.Msg {
	out := nats.NewMsg(m.Subject)
	out.Data = m.Data
	for k, v := range m.Header {
		if k != "Nats-Msg-Id" && !strings.HasPrefix(k, "Nats-Expected-") {
			out.Header[k] = v
		}
	}
	return out
}

// value reads a counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// contract is the notification the relay publishes for a domain event, with the default
// catalogue's labels: what the renderer is given in production.
func contract[P notifications.Payload](t interface {
	Helper()
	Fatalf(string, ...any)
}, ev domain.Event) P {
	t.Helper()
	p, _ := relay.Contract(ev, domain.DefaultCatalogue())
	out, ok := p.(P)
	if !ok {
		t.Fatalf("%T maps to %T", ev, p)
	}
	return out
}

func date(d domain.Date) notifications.Date {
	return notifications.Date{Year: d.Year, Month: d.Month, Day: d.Day}
}
