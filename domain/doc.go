// Package domain holds the rules of the space-increase order: the subscription and order
// deciders, their commands and events, the catalogue and the pricing. It is pure: state,
// command and time in; events or a typed refusal out. No I/O, no clock, no logger.
package domain
