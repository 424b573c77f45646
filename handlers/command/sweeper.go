package command

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
)

// Sweeper expires confirmed orders left unpaid past their payment term, so that they leave
// the pending-payment list and free their subscription for a new order.
type Sweeper struct {
	h        *Handler
	overdue  func(now time.Time) []uuid.UUID
	interval time.Duration
	log      *zap.Logger
}

// NewSweeper builds a sweeper that asks overdue (a read model's query) which orders are past
// their term, every interval. The decider has the last word: an order paid meanwhile is
// refused expiry and left alone.
func NewSweeper(h *Handler, overdue func(now time.Time) []uuid.UUID, interval time.Duration) *Sweeper {
	return &Sweeper{h: h, overdue: overdue, interval: interval, log: h.log.Named("sweeper")}
}

// Run sweeps until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Sweep expires every overdue order once and says how many it expired.
func (s *Sweeper) Sweep(ctx context.Context) int {
	n := 0
	for _, id := range s.overdue(s.h.now()) {
		meta := Meta{CorrelationID: uuid.NewString(), Actor: "process:sweeper"}
		res, _, err := s.h.ExecuteOrder(ctx, id, domain.ExpireOrder{}, meta, nil)
		var de *domain.Error
		switch {
		case err == nil && res.Appended:
			n++
			s.log.Info("order expired unpaid", zap.Stringer("order", id))
		case errors.As(err, &de):
			// Paid, cancelled or not yet due after all: the read model was behind.
		case err != nil:
			s.log.Warn("expire order", zap.Stringer("order", id), zap.Error(err))
		}
	}
	return n
}
