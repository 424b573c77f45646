package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/lazyfs"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// TestPowerLossKeepsEveryAcknowledgedCommand runs the whole of orderd (durable embedded
// store, read models, relay, mailer) on a disk that loses whatever was not fsynced
// (internal/lazyfs, torn writes), under concurrent order flows over HTTP; cuts the power;
// restarts orderd on what survived. It must start, every order whose confirmation was
// answered must be confirmed, and the log must verify (no gap, every hash chain intact).
func TestPowerLossKeepsEveryAcknowledgedCommand(t *testing.T) {
	disk := lazyfs.ForTest(t, lazyfs.Options{Torn: true})
	cfg := testConfig(filepath.Join(disk.Dir(), "data"))
	cfg.RelaxedSync = false
	a, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = a.Shutdown(context.Background()) // fails on a dead disk: nothing to do about it
		}
	}
	t.Cleanup(stop) // before the disk is unmounted
	key, err := tokens.LoadPrivateKey(a.DevKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := tokens.Mint(key, tokens.RoleOperator, "op", time.Hour)

	var mu sync.Mutex
	var confirmed []string
	enough := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				owner := fmt.Sprintf("owner-%d-%d", w, i)
				cu, _ := tokens.Mint(key, tokens.RoleCustomer, owner, time.Hour)
				id, ok := flow(a.URL(), op, cu, owner)
				if !ok {
					return // the power is cut
				}
				mu.Lock()
				confirmed = append(confirmed, id)
				if len(confirmed) >= 40 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("not enough flows answered")
	}
	disk.PowerCut()
	cancel()
	wg.Wait()
	stop()
	if err := disk.Restart(); err != nil {
		t.Fatal(err)
	}

	r := startApp(t, cfg)
	op = r.token(tokens.RoleOperator, "op") // the development key may not have survived
	mu.Lock()
	defer mu.Unlock()
	for _, id := range confirmed {
		evs, err := r.a.Store.ReadStream(context.Background(), "order-"+id, 0)
		// The confirmation may be followed by the mailer's EmailSent: look for it.
		if err != nil || !slices.ContainsFunc(evs, func(e eventstore.Envelope) bool { return e.Type == "OrderConfirmed" }) {
			t.Fatalf("order %s, confirmed before the power cut, is not in the log after the restart: %v", id, err)
		}
	}
	// The read models follow the log again, from what they had on disk.
	for _, id := range confirmed {
		testwait.For(t, "order "+id+" confirmed in the read model", func() bool {
			ans := r.do("GET", "/v1/orders/"+id, op, nil)
			return ans.status == 200 && ans.field(t, "status") == "confirmed"
		})
	}
	rep, err := audit.VerifyStore(context.Background(), r.a.Store, nil, nil)
	if err != nil {
		t.Fatalf("the log does not verify after the power cut: %v", err)
	}
	t.Logf("%d confirmed orders survived; %d streams verified", len(confirmed), rep.Streams)
}

// flow opens a subscription and confirms an order on it over HTTP; ok is false at the first
// failure (which is expected once the power is cut).
func flow(base, op, cu, owner string) (orderID string, ok bool) {
	call := func(path, token string, body any) map[string]any {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest("POST", base+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		defer res.Body.Close()
		if res.StatusCode/100 != 2 {
			return nil
		}
		m := map[string]any{}
		if json.NewDecoder(res.Body).Decode(&m) != nil {
			return nil
		}
		return m
	}
	sub := call("/v1/subscriptions", op, openBody(owner))
	if sub == nil {
		return "", false
	}
	o := call("/v1/orders", cu, map[string]any{"subscriptionId": sub["subscriptionId"], "channel": "panel"})
	if o == nil {
		return "", false
	}
	orderID, _ = o["orderId"].(string)
	p := "/v1/orders/" + orderID
	if call(p+"/checkout", cu, nil) == nil ||
		call(p+"/payment-method", cu, map[string]any{"method": "bank-transfer"}) == nil ||
		call(p+"/confirm", cu, map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true,
			"acknowledgePrivacy": true, "termsVersion": "2026-01"}) == nil {
		return "", false
	}
	return orderID, true
}
