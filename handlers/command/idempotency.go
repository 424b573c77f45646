package command

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// keySpace is the UUIDv5 namespace of idempotency keys. Changing it would change the ids
// a retry derives, so that a retry across the change would run its command again.
var keySpace = uuid.MustParse("6f1f0e2c-4b8e-5a41-9d0a-3c2f7b1e8a55")

// IdempotencyKey is the key of a request that may be retried: the same scope (who asks,
// on which route, under which client key) always gives the same key, and the key gives the
// ids the command creates (DerivedID) and the ids of its events. So a retry, after a crash
// of this process or on another replica, produces the very same events: the store keeps
// the first and the handler answers from the log what the first attempt did.
func IdempotencyKey(scope ...string) uuid.UUID {
	return uuid.NewSHA1(keySpace, []byte(strings.Join(scope, "\x00")))
}

// DerivedID is the id of the thing (what: "subscription", "order") a keyed command creates.
func DerivedID(key uuid.UUID, what string) uuid.UUID {
	return uuid.NewSHA1(key, []byte("id\x00"+what))
}

// eventID is the id of the i-th event that step of a keyed command appends to stream.
func eventID(key uuid.UUID, stream, step string, i int) uuid.UUID {
	return uuid.NewSHA1(key, fmt.Appendf(nil, "event\x00%s\x00%s\x00%d", stream, step, i))
}

// stepOf names a command within its request: one request may append several commands to
// one stream (free an abandoned order slot, then reserve it), and each needs ids of its own.
// The "domain." prefix is the one the ids were first derived with (from the Go type's
// name): a retry across an upgrade must derive the same ids.
func stepOf(cmd domain.Command) string {
	name := "domain." + cmd.CommandName()
	switch c := cmd.(type) {
	case domain.ReserveOrderSlot:
		return name + "/" + c.OrderID.String()
	case domain.ReleaseOrderSlot:
		return name + "/" + c.OrderID.String()
	case domain.ApplyPurchase:
		return name + "/" + c.OrderID.String()
	}
	return name
}
