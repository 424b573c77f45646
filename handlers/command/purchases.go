package command

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/internal/backoff"
)

// Purchases is the process manager between the two aggregates: it follows the log and,
// when an order is paid, applies the purchase to its subscription; when an order is
// cancelled, expires or is abandoned, it frees the subscription's order slot. It acts from the log,
// after the order's events are stored, and every step is idempotent per order id, so a
// crash anywhere loses nothing and a replay applies nothing twice.
type Purchases struct {
	h          *Handler
	checkpoint FileCheckpoint
	log        *zap.Logger
	position   atomic.Uint64
}

// Position is the log position up to which the process manager has acted.
func (p *Purchases) Position() uint64 { return p.position.Load() }

// NewPurchases builds the process manager; its checkpoint is kept in the file at path.
func NewPurchases(h *Handler, checkpointPath string) *Purchases {
	return &Purchases{h: h, checkpoint: FileCheckpoint(checkpointPath), log: h.log.Named("purchases")}
}

// Run follows the log until ctx ends. A failing step is retried (the commit is delivered
// again after a backoff), never skipped.
func (p *Purchases) Run(ctx context.Context) error {
	after, err := p.checkpoint.Load()
	if err != nil {
		return err
	}
	p.position.Store(after)
	p.log.Info("following the log", zap.Uint64("after", after))
	// Every step is idempotent, so the checkpoint only saves work on a restart: it is
	// written at most every checkpointEvery, and when Run ends.
	saved, lastSave := after, time.Now()
	save := func() {
		if after == saved {
			return
		}
		if err := p.checkpoint.Save(after); err != nil {
			p.log.Warn("save checkpoint", zap.Error(err))
			return
		}
		saved, lastSave = after, time.Now()
	}
	defer save()
	err = eventstore.Follow(ctx, p.h.store, after, eventstore.FollowOptions{
		DecodeOptions: eventstore.DecodeOptions{Codec: p.h.codec, Decode: acted, Logger: p.log,
			// Never skipped: a paid order left unapplied is worse than a process manager
			// visibly stuck until a build that reads the event is deployed.
			Undecodable: func(_ eventstore.Envelope, err error) error { return err }},
		Name:    "purchases",
		Backoff: backoff.From(time.Second),
	}, func(ctx context.Context, c eventstore.Commit) error {
		for _, d := range c.Events {
			if err := p.handle(ctx, d); err != nil {
				return err
			}
		}
		after = c.Position
		p.position.Store(after)
		if time.Since(lastSave) >= checkpointEvery {
			save()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// acted are the order events the process manager acts on: the only ones it decodes.
func acted(typ string) bool {
	switch typ {
	case "OrderPaid", "OrderCancelled", "OrderExpired", "OrderAbandoned":
		return true
	}
	return false
}

// checkpointEvery bounds how often the process manager writes its checkpoint.
const checkpointEvery = time.Second

func (p *Purchases) handle(ctx context.Context, d eventstore.Decoded) error {
	category, orderID, err := eventstore.ParseStream(d.Stream)
	if err != nil || category != OrderCategory || d.Event == nil {
		return nil
	}
	env, ev := d.Envelope, d.Event
	var (
		cmd   domain.SubscriptionCommand
		subID uuid.UUID
	)
	switch e := ev.(type) {
	case domain.OrderPaid:
		cmd, subID = domain.ApplyPurchase{OrderID: e.OrderID, Quote: e.Quote, PaidAt: e.PaidAt}, e.SubscriptionID
	case domain.OrderCancelled:
		cmd = domain.ReleaseOrderSlot{OrderID: orderID, Reason: "order cancelled"}
	case domain.OrderExpired:
		cmd = domain.ReleaseOrderSlot{OrderID: orderID, Reason: "order expired unpaid"}
	case domain.OrderAbandoned:
		cmd = domain.ReleaseOrderSlot{OrderID: orderID, Reason: "cart abandoned"}
	}
	if subID == uuid.Nil { // cancellation, expiry and abandonment do not name the subscription: the order does
		o, _, ok, err := p.h.Order(ctx, orderID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("purchases: order %s not found", orderID)
		}
		subID = o.SubscriptionID
	}
	meta := Meta{
		CorrelationID: env.Metadata.CorrelationID, CausationID: env.ID.String(),
		Actor: "process:purchases", Channel: env.Metadata.Channel,
	}
	_, _, err = p.h.ExecuteSubscription(ctx, subID, cmd, meta, nil)
	if de, ok := domain.AsError(err); ok {
		// A refusal will not change on a retry: record it loudly and move on.
		p.log.Error("purchase step refused", zap.Stringer("order", orderID), zap.String("type", env.Type),
			zap.String("correlation_id", env.Metadata.CorrelationID), zap.Error(de))
		return nil
	}
	return err
}
