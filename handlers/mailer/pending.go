package mailer

import (
	"context"
	"fmt"
)

// Pending is how many notifications the mailer has still to handle: those its consumer
// has not delivered yet, and those delivered and not yet acknowledged. It is the mailer's
// lag, counted in notifications.
func (m *Mailer) Pending(ctx context.Context) (uint64, error) {
	c, err := m.js.Consumer(ctx, m.cfg.Stream, m.cfg.Durable)
	if err != nil {
		return 0, fmt.Errorf("mailer: consumer %s: %w", m.cfg.Durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("mailer: consumer %s: %w", m.cfg.Durable, err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}
