package domain

import "github.com/google/uuid"

// OrderOpener is a command that opens a new order on a subscription: the purchase of an
// item (RequestSpaceIncrease: extra space). Every purchasable item has one, decided by
// DecideOrder on an order that does not exist yet. The handler takes the subscription's
// single order slot for the new order first, then decides the command bound to the new
// order's id and the subscription as it stood when the slot was taken (On).
type OrderOpener interface {
	OrderCommand
	// On is the command for the order orderID opened on sub.
	On(orderID uuid.UUID, sub Subscription) OrderOpener
}

// On binds the request to its order id and the subscription it prices from.
func (c RequestSpaceIncrease) On(orderID uuid.UUID, sub Subscription) OrderOpener {
	c.OrderID, c.Subscription = orderID, sub
	return c
}
