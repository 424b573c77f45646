package command

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
)

// Sweeper records what the calendar has made of orders in progress: carts and order forms
// untouched for the catalogue's days are abandoned, confirmed orders unpaid past their term
// expire (they leave the pending-payment list), and partly paid ones past it become
// overdue. Abandoned and expired orders free their subscription for a new order.
type Sweeper struct {
	h        *Handler
	overdue  func(now time.Time) []uuid.UUID
	interval time.Duration
	log      *zap.Logger
}

// NewSweeper builds a sweeper that asks overdue (a read model's query) which orders may be
// due, every interval. The decider has the last word (SweepOrder): an order paid or touched
// meanwhile is left alone.
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

// Sweep sweeps every order the read model names once, and says how many it changed.
func (s *Sweeper) Sweep(ctx context.Context) int {
	n := 0
	for _, id := range s.overdue(s.h.now()) {
		meta := Meta{CorrelationID: uuid.NewString(), Actor: "process:sweeper"}
		res, o, err := s.h.ExecuteOrder(ctx, id, domain.SweepOrder{}, meta, nil)
		var de *domain.Error
		switch {
		case err == nil && res.Appended:
			n++
			s.log.Info("order swept", zap.Stringer("order", id), zap.String("status", string(o.Status)))
		case errors.As(err, &de):
			// Paid, cancelled, touched or not yet due after all: the read model was behind.
		case err != nil:
			s.log.Warn("expire order", zap.Stringer("order", id), zap.Error(err))
		}
	}
	return n
}
