package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
)

// AbandonedSlotAfter is how long a reserved order slot may stand with no order behind it
// (the process stopped between reserving and creating the order) before a new order may
// take it over.
const AbandonedSlotAfter = time.Minute

// OpenOrder opens a new order on a subscription with the command of what is bought (for
// extra space, domain.RequestSpaceIncrease{GB, Channel}), and answers the new order's id.
// The order stream cannot see other orders, so the subscription's single order slot is
// reserved first, on the subscription stream, where concurrent requests meet on one
// expected version: of 200 requests at once, one gets the slot and the others
// ErrOrderInProgress. Every purchasable item comes this one way.
//
// Each of checks runs first on the subscription, as loaded for the order (the caller's
// right to order on it, whether the subscription exists included): its error is answered
// as is, and nothing is written.
func (h *Handler) OpenOrder(ctx context.Context, subID uuid.UUID, cmd domain.OrderOpener, meta Meta, checks ...func(domain.Subscription) error) (uuid.UUID, Result, domain.Order, error) {
	start := time.Now()
	sub, err := h.subs.load(ctx, subID, false)
	if err != nil {
		return uuid.Nil, Result{}, domain.Order{}, err
	}
	for _, check := range checks {
		if err := check(sub.state); err != nil { // the caller's refusal, not the command's
			return uuid.Nil, Result{}, domain.Order{}, err
		}
	}
	id, res, o, err := h.openOrder(ctx, subID, sub, cmd, meta)
	h.metrics.observe(cmd.CommandName(), err, time.Since(start))
	return id, res, o, err
}

// openOrder opens the order on subscription subID, sub as loaded for it.
func (h *Handler) openOrder(ctx context.Context, subID uuid.UUID, sub cached[domain.Subscription], cmd domain.OrderOpener, meta Meta) (uuid.UUID, Result, domain.Order, error) {
	orderID := uuid.New()
	if meta.Key != uuid.Nil {
		// A retry derives the same order id. If an earlier attempt created the order, its
		// answer comes from the log, whatever became of the slot since (the order may be
		// paid and another one in progress); if it only reserved the slot (it died between
		// the two appends), the slot is already this order's and the order is created now.
		orderID = DerivedID(meta.Key, "order")
		marker := eventID(meta.Key, h.orders.stream(orderID), stepOf(cmd), 0)
		_, read, _, err := h.orders.loadRead(ctx, orderID, true, true)
		if err != nil {
			return uuid.Nil, Result{}, domain.Order{}, err
		}
		if found := h.orders.find(read, marker); found != nil {
			return orderID, found.res, found.state, nil
		}
	}
	// Decide once before reserving, so that a refused request (bad quantity, closed
	// subscription) does not hold the slot even for a moment.
	if _, err := domain.DecideOrder(h.cat, domain.Order{}, cmd.On(orderID, sub.state), h.now()); err != nil {
		return uuid.Nil, Result{}, domain.Order{}, err
	}
	if err := h.reserveSlot(ctx, subID, orderID, meta); err != nil {
		return uuid.Nil, Result{}, domain.Order{}, err
	}
	// Price from the subscription as it stood when the slot was taken.
	sub, err := h.subs.load(ctx, subID, false)
	if err == nil {
		var res Result
		var o domain.Order
		// run, not execute: OpenOrder above observes this command once, as a whole.
		res, o, _, _, err = h.orders.run(ctx, orderID, meta, nil, fixed[domain.Order, domain.OrderCommand](cmd.On(orderID, sub.state)))
		if err == nil {
			return orderID, res, o, nil
		}
	}
	// The order was not created: give the slot back (if this fails too, the slot is taken
	// over once AbandonedSlotAfter has passed).
	if _, _, rerr := h.subs.execute(context.WithoutCancel(ctx), subID,
		domain.ReleaseOrderSlot{OrderID: orderID, Reason: "order not created"}, meta, nil); rerr != nil {
		h.log.Warn("release order slot", zap.Stringer("subscription", subID),
			zap.String("correlation_id", meta.CorrelationID), zap.Error(rerr))
	}
	return uuid.Nil, Result{}, domain.Order{}, err
}

func (h *Handler) reserveSlot(ctx context.Context, subID, orderID uuid.UUID, meta Meta) error {
	_, _, err := h.subs.execute(ctx, subID, domain.ReserveOrderSlot{OrderID: orderID}, meta, nil)
	if !errors.Is(err, domain.ErrOrderInProgress) {
		return err
	}
	sub, err2 := h.subs.load(ctx, subID, true)
	if err2 != nil {
		return errors.Join(err, err2)
	}
	held := sub.state.OpenOrder
	if held == uuid.Nil { // freed since: try again
		_, _, err = h.subs.execute(ctx, subID, domain.ReserveOrderSlot{OrderID: orderID}, meta, nil)
		return err
	}
	o, lerr := h.orders.load(ctx, held, true)
	if lerr == nil && o.exists && o.state.Abandoned(h.cat, domain.DateOf(h.now())) {
		// An abandoned cart the sweeper has not ended yet: end it now, with its own event,
		// rather than answer order-in-progress for a cart nobody will finish.
		abandon := meta
		abandon.Actor, abandon.Channel = "process:sweeper", ""
		if _, after, aerr := h.orders.execute(ctx, held, domain.AbandonOrder{}, abandon, nil); aerr == nil {
			o.state = after
		}
	}
	switch {
	case lerr != nil:
		return errors.Join(err, lerr)
	case o.exists && o.state.Status.InProgress():
		return err // a live order holds the slot
	case !o.exists && h.now().Sub(sub.state.ReservedAt) < AbandonedSlotAfter:
		return err // its order may be being created right now
	}
	// The order that holds the slot ended (the process manager, which releases it, is
	// behind) or was never created (a crash between the two appends): free it now.
	reason := "abandoned: the order was never created"
	if o.exists {
		reason = "order " + string(o.state.Status)
	}
	h.log.Warn("freeing an order slot", zap.Stringer("subscription", subID), zap.Stringer("order", held),
		zap.String("reason", reason), zap.String("correlation_id", meta.CorrelationID))
	release := domain.ReleaseOrderSlot{OrderID: held, Reason: reason}
	if _, _, rerr := h.subs.execute(ctx, subID, release, meta, nil); rerr != nil {
		return fmt.Errorf("release abandoned slot: %w", rerr)
	}
	_, _, err = h.subs.execute(ctx, subID, domain.ReserveOrderSlot{OrderID: orderID}, meta, nil)
	return err
}
