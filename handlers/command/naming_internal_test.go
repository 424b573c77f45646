package command

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// The steps of a keyed request, named now by the commands themselves, are spelled as they
// were when derived from the Go type (%T): a retry across the upgrade derives the same
// event ids, so the store still de-duplicates it.
func TestStepsKeepTheIDsOfEarlierReleases(t *testing.T) {
	order := uuid.MustParse("0b7f5c1e-96a4-4c1a-9f4e-2b1d3c4e5f60")
	for _, cmd := range []domain.Command{
		domain.RequestSpaceIncrease{}, domain.ToggleCoTermination{}, domain.ProceedToCheckout{},
		domain.SelectPaymentMethod{}, domain.ModifyOrder{}, domain.ConfirmOrder{}, domain.RegisterPayment{},
		domain.CancelOrder{}, domain.ExpireOrder{}, domain.RepriceOrder{}, domain.AbandonOrder{},
		domain.SweepOrder{}, domain.RecordEmailSent{}, domain.OpenSubscription{}, domain.ReportUsage{},
	} {
		if got, was := stepOf(cmd), fmt.Sprintf("%T", cmd); got != was {
			t.Errorf("step %q, earlier releases %q", got, was)
		}
	}
	for _, cmd := range []domain.Command{
		domain.ReserveOrderSlot{OrderID: order}, domain.ReleaseOrderSlot{OrderID: order}, domain.ApplyPurchase{OrderID: order},
	} {
		if got, was := stepOf(cmd), fmt.Sprintf("%T/%s", cmd, order); got != was {
			t.Errorf("step %q, earlier releases %q", got, was)
		}
	}
	key := uuid.MustParse("6f1f0e2c-4b8e-5a41-9d0a-3c2f7b1e8a55")
	// Pinned: the id of the first event of a keyed confirmation of one order.
	if got := eventID(key, "order-"+order.String(), stepOf(domain.ConfirmOrder{}), 0); got.String() != "6fe0ced2-13e6-5a50-a97c-4b62ff55d333" {
		t.Errorf("derived %s, earlier releases 6fe0ced2-13e6-5a50-a97c-4b62ff55d333", got)
	}
}
