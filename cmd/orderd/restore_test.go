package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// A backup restored into a new data folder, and orderd started on it with its mailer on,
// sends nothing again: every email sent before the backup is in the orders' histories,
// which the backup carries, while NATS (notifications, consumer) starts empty and
// republishes every confirmation and payment. The orders are as they were.
func TestRestoredBackupSendsNoEmailAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs orderd")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), ".", "../orderctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	first, addr := t.TempDir(), freeAddr(t)
	d := startOrderd(t, bin, first, addr)
	cl := &client{url: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}, ctx: context.Background()}
	op := mintToken(t, bin, first, "operator", "restore-op")
	pay := mintToken(t, bin, first, "payments", "restore-pay")
	auditor := mintToken(t, bin, first, "auditor", "restore-audit")

	// Orders in every state, and the emails each one gets.
	type order struct {
		id     string
		emails int
	}
	var orders []order
	for i, fate := range []string{"confirmed", "confirmed", "confirmed", "paid", "paid", "paid", "cart", "cart", "cancelled", "cancelled"} {
		owner := fmt.Sprintf("restore-%d", i)
		cu := mintTokenFast(t, bin, first, owner)
		sub, ok := cl.post("/v1/subscriptions", op, openBody(owner))
		if !ok {
			t.Fatal("open subscription")
		}
		o, ok := cl.post("/v1/orders", cu, map[string]any{"subscriptionId": sub["subscriptionId"], "channel": "panel"})
		if !ok {
			t.Fatal("order")
		}
		id := o["orderId"].(string)
		path := "/v1/orders/" + id
		if fate == "cart" {
			orders = append(orders, order{id, 0})
			continue
		}
		var ans map[string]any
		for _, step := range []struct {
			path string
			body any
		}{
			{path + "/checkout", nil},
			{path + "/payment-method", map[string]any{"method": "bank-transfer"}},
			{path + "/confirm", map[string]any{"acceptGeneralConditions": true, "approveUnfairTerms": true, "acknowledgePrivacy": true, "termsVersion": "v1"}},
		} {
			if ans, ok = cl.post(step.path, cu, step.body); !ok {
				t.Fatalf("%s", step.path)
			}
		}
		// The instructions go out (and are recorded) before the order moves on.
		waitEmails(t, cl, auditor, id, 1)
		switch fate {
		case "paid":
			total := ans["quote"].(map[string]any)["totalCents"]
			if _, ok := cl.post(path+"/payments", pay, map[string]any{"amountCents": total, "method": "bank-transfer", "reference": "R-" + id}); !ok {
				t.Fatal("payment")
			}
			orders = append(orders, order{id, 2})
		case "cancelled":
			if _, ok := cl.post(path+"/cancel", cu, map[string]any{}); !ok {
				t.Fatal("cancel")
			}
			orders = append(orders, order{id, 1})
		default:
			orders = append(orders, order{id, 1})
		}
	}
	sent := 0
	statuses := map[string]string{}
	for _, o := range orders {
		waitEmails(t, cl, auditor, o.id, o.emails)
		sent += o.emails
		statuses[o.id] = cl.get(t, "/v1/orders/"+o.id, op)["status"].(string)
	}
	if n := countFiles(t, filepath.Join(first, "outbox")); n != sent {
		t.Fatalf("%d emails in the first outbox, want %d", n, sent)
	}
	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}

	// Backup, restore into a new folder (a new NATS: no notifications, no consumer), start.
	backup := filepath.Join(t.TempDir(), "backup.jsonl")
	restored := filepath.Join(t.TempDir(), "restored")
	for _, args := range [][]string{
		{"export", "--data", first, "--out", backup},
		{"import", "--data", restored, backup},
	} {
		if out, err := exec.Command(filepath.Join(bin, "orderctl"), args...).CombinedOutput(); err != nil {
			t.Fatalf("orderctl %s: %v\n%s", args[0], err, out)
		}
	}
	// The tokens are checked with the development key of the folder orderd runs on.
	key, err := os.ReadFile(tokens.DevKeyFile(first))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens.DevKeyFile(restored), key, 0o600); err != nil {
		t.Fatal(err)
	}
	d = startOrderd(t, bin, restored, addr)
	defer func() { _ = d.Process.Signal(syscall.SIGTERM); _ = d.Wait() }()
	// Every confirmation and payment goes through the mailer again, and each is skipped.
	testwait.Check(t, fmt.Sprintf("the mailer skipping %d notifications as already sent", sent), func() error {
		if n := skipped(t, "http://"+addr); n < float64(sent) {
			return fmt.Errorf("%v skipped so far", n)
		}
		return nil
	})
	if n := countFiles(t, filepath.Join(restored, "outbox")); n != 0 {
		t.Fatalf("%d emails sent again after the restore", n)
	}
	for _, o := range orders {
		if got := cl.get(t, "/v1/orders/"+o.id, op)["status"].(string); got != statuses[o.id] {
			t.Errorf("order %s is %s after the restore, was %s", o.id, got, statuses[o.id])
		}
		if n := emailsOf(t, cl, auditor, o.id); n != o.emails {
			t.Errorf("order %s history shows %d emails after the restore, want %d", o.id, n, o.emails)
		}
		// The mailer's records are links of the order's hash chain like any other event.
		if page := cl.get(t, "/v1/audit/streams/order-"+o.id, auditor); page["chainIntact"] != true {
			t.Errorf("order %s: hash chain broken: %v", o.id, page["break"])
		}
	}
	t.Logf("%d emails before the backup, %d after the restore; %d orders with the same status", sent, countFiles(t, filepath.Join(restored, "outbox")), len(orders))
}

// emailsOf counts the EmailSent events in the order's history, through the audit API.
func emailsOf(t *testing.T, cl *client, auditor, orderID string) int {
	t.Helper()
	page := cl.get(t, "/v1/audit/streams/order-"+orderID, auditor)
	n := 0
	for _, e := range page["events"].([]any) {
		if e.(map[string]any)["type"] == "EmailSent" {
			n++
		}
	}
	return n
}

func waitEmails(t *testing.T, cl *client, auditor, orderID string, n int) {
	t.Helper()
	testwait.Check(t, fmt.Sprintf("%d emails recorded for order %s", n, orderID), func() error {
		if got := emailsOf(t, cl, auditor, orderID); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			n++
		}
	}
	return n
}

// skipped reads mailer_emails_skipped_total{reason="already_sent"} from /metrics.
func skipped(t *testing.T, base string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `mailer_emails_skipped_total{reason="already_sent"}`) {
			v, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return v
		}
	}
	return 0
}
