package audit_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore/jetstream"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
)

// openFolder starts the real embedded server on a JetStream folder and opens the store.
func openFolder(t *testing.T, dir string) (*jetstream.Store, func()) {
	t.Helper()
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedConfig{Dir: dir, RelaxedSync: true})
	if err != nil {
		t.Fatalf("start embedded JetStream on %s: %v", dir, err)
	}
	s, err := jetstream.Open(context.Background(), emb.Conn, jetstream.Options{})
	if err != nil {
		emb.Close()
		t.Fatalf("open the store: %v", err)
	}
	return s, func() { s.Close(); emb.Close() }
}

// paidLog writes a log in dir (a JetStream folder) with a paid order in the middle of it:
// two subscriptions with confirmed orders, the first order paid, then two more. It returns
// the position of the payment's commit and the order's stream.
func paidLog(t *testing.T, dir string) (payment uint64, orderStream string) {
	t.Helper()
	s, closeStore := openFolder(t, dir)
	defer closeStore()
	seeded := seed(t, s, 2)
	h := command.New(s, command.Options{})
	ctx := testCtx(t)
	o, _, _, err := h.Order(ctx, seeded.orders[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ExecuteOrder(ctx, seeded.orders[0], domain.RegisterPayment{AmountCents: o.DueCents(), Method: o.PaymentMethod, Reference: "CRO-FLIP"},
		command.Meta{Actor: "payments:gw", Channel: "bank"}, nil); err != nil {
		t.Fatalf("register payment: %v", err)
	}
	seed(t, s, 2)
	for _, env := range readLog(t, s) {
		if env.Type == "PaymentRegistered" {
			return env.Position, env.Stream
		}
	}
	t.Fatal("no PaymentRegistered in the log")
	return 0, ""
}

func TestAByteFlippedInABlockFileIsAGapNamedByPosition(t *testing.T) {
	orig := filepath.Join(t.TempDir(), "jetstream")
	payment, orderStream := paidLog(t, orig)
	cp := filepath.Join(t.TempDir(), "jetstream")
	jstest.CopyDir(t, orig, cp)
	blk := jstest.FlipByte(t, cp, `"reference":"CRO-FLIP"`, false)
	t.Logf("flipped a byte in %s; the payment was at position %d on %s", blk, payment, orderStream)

	s, closeStore := openFolder(t, cp)
	defer closeStore()
	_, err := audit.ScanGaps(testCtx(t), s)
	var d *audit.Damage
	if !errors.As(err, &d) {
		t.Fatalf("scan: %v, want the damage named", err)
	}
	t.Logf("found: %v", d)
	found := false
	for _, g := range d.Gaps {
		// The order's stream has no later event to show a version gap; the server's index
		// still counts the dropped commit, which names the stream.
		if g.Kind == audit.MissingPositions && g.FromPosition == payment && g.ToPosition == payment &&
			len(g.Streams) == 1 && g.Streams[0] == orderStream {
			found = true
		}
	}
	if !found {
		t.Fatalf("gaps %v: want position %d named, lost from %s", d.Gaps, payment, orderStream)
	}
	// The full check (verify-chain) reads every event: the chains hold, as the whole commit
	// is gone, but the missing position is named.
	res, err := audit.CheckStore(testCtx(t), s, audit.CheckOptions{})
	if err != nil || res.Damage == nil || res.Damage.Gaps[0].String() != d.Gaps[0].String() || res.Break != nil {
		t.Fatalf("check: %+v, %v: want the gap at %d", res, err, payment)
	}
}
