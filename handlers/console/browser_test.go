package console_test

import (
	"context"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// chromium finds Debian's chromium (or another Chrome). Without one the browser tests say
// so and are skipped, except in CI (CI=true), where that is a failure: .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium on this machine (apt-get install chromium): the console's browser tests cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// tab starts a headless Chromium and opens one tab in it, for the test's duration.
func tab(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.DisableGPU,
		// Containers run tests as root, where Chromium's sandbox cannot start.
		chromedp.NoSandbox, chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// signInByKeyboard types the token into the sign-in form and presses Enter.
func signInByKeyboard(t *testing.T, ctx context.Context, p *product, token string) {
	t.Helper()
	run(t, ctx, chromedp.Navigate(p.url+"/console/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token+kb.Enter))
}

// The console in a real browser, over the README walkthrough's data: a customer is refused,
// a finance clerk signs in with the keyboard, sees the order pending with its totals and
// chart, and downloads the CSV by clicking; once paid, the order's timeline shows its
// events in order, with the state as of any of them; the read models and the log's
// verification show the same log.
func TestConsoleInABrowser(t *testing.T) {
	ctx := tab(t)
	p := startProduct(t)
	w := p.walkthrough()

	// A customer's token is refused, and no page opens with it.
	signInByKeyboard(t, ctx, p, p.token(tokens.RoleCustomer, "cust-42"))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := text(t, ctx, "#problem"); !strings.Contains(got, "may not use the console") {
		t.Fatalf("a customer signing in: %q", got)
	}
	run(t, ctx, chromedp.Navigate(p.url+"/console/pending"), chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := text(t, ctx, "#problem"); !strings.Contains(got, "Sign in") {
		t.Fatalf("pending after a refused sign-in: %q", got)
	}

	// Finance signs in with the keyboard alone, and lands on the pending payments.
	signInByKeyboard(t, ctx, p, p.token(tokens.RoleFinance, "clerk-7"))
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS("#csv")))
	// The first Tab reaches the skip link: the page is made for keyboards.
	run(t, ctx, chromedp.KeyEvent(kb.Tab))
	if got := eval[string](t, ctx, `document.activeElement.className`); got != "skip" {
		t.Fatalf("the first Tab focuses %q, want the skip link", got)
	}
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('#pending-orders tbody tr')].map(r => r.textContent)`)
	if len(rows) != 1 || !strings.Contains(rows[0], w.order) || !strings.Contains(rows[0], "Rossi & Figli S.r.l.") ||
		!strings.Contains(rows[0], "bank-transfer") {
		t.Fatalf("pending rows %q", rows)
	}
	if got, want := text(t, ctx, "#total-remaining"), "€"+projections.Euros(w.total); got != want {
		t.Fatalf("total remaining %q, want %q", got, want)
	}
	// The chart has a bar per method with money pending and one per age bucket.
	bars := eval[[]string](t, ctx, `[...document.querySelectorAll('#chart rect')].map(r => r.getAttribute('width'))`)
	if len(bars) != 1+len(projections.AgeBuckets) || bars[0] == "0" {
		t.Fatalf("chart bars %v", bars)
	}
	labels := eval[[]string](t, ctx, `[...document.querySelectorAll('label')].map(l => l.htmlFor)`)
	for _, id := range []string{"method", "minAgeDays"} {
		if !slices.Contains(labels, id) {
			t.Errorf("no label for #%s (labels for %v)", id, labels)
		}
	}
	if got := text(t, ctx, "#credits"); !strings.Contains(got, "Credits due") {
		t.Fatalf("credits section %q", got)
	}

	// The CSV, by clicking its link.
	dir := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	run(t, ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		enabled := true
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &enabled})
		return err
	}), chromedp.Click(chromedp.CSS("#csv")))
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dir, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("the CSV download was cancelled")
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 2 || recs[0][0] != "order_id" || recs[1][0] != w.order || recs[1][3] != "Rossi & Figli S.r.l." {
		t.Fatalf("the CSV (%v): %q", err, recs)
	}
	if at := recs[1][slices.Index(recs[0], "confirmed_at")]; len(at) != len("2006-01-02T15:04:05Z") {
		t.Fatalf("confirmed_at %q is not RFC 3339 to the second", at)
	}

	// The transfer arrives. The order's timeline lists its events in order.
	p.pay(w)
	run(t, ctx, chromedp.Navigate(p.url+"/console/timeline"), chromedp.WaitVisible(chromedp.CSS("#id")),
		chromedp.SendKeys(chromedp.CSS("#id"), w.order+kb.Enter), chromedp.WaitVisible(chromedp.CSS("#events")))
	types := eval[[]string](t, ctx, `[...document.querySelectorAll('#events tbody th.type')].map(e => e.textContent)`)
	want := []string{"SpaceIncreaseRequested", "CoTerminationToggled", "CoTerminationToggled", "CheckoutStarted",
		"PaymentMethodSelected", "OrderModified", "CheckoutStarted", "PaymentMethodSelected", "OrderConfirmed",
		"PaymentRegistered", "OrderPaid"}
	// The mailer records each email it sent (EmailSent) when it has sent it: how those
	// interleave with the payment depends on its speed, so they are checked apart.
	commands := slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s == "EmailSent" })
	if !slices.Equal(commands, want) {
		t.Fatalf("the order's timeline %v, want %v among the emails", types, want)
	}
	if !slices.Contains(types, "EmailSent") {
		t.Errorf("the timeline shows no email sent: %v", types)
	}
	cells := eval[[][]string](t, ctx, `[...document.querySelectorAll('#events tbody tr')].map(r => [...r.children].map(c => c.textContent.trim()))`)
	for i, c := range cells {
		// version, position, when, event, who, channel, chain
		who, channel, chain := c[4], c[5], c[6]
		if chain != "linked" || c[0] != strings.TrimSpace(c[0]) || c[2] == "" {
			t.Errorf("row %d: %q", i, c)
		}
		switch types[i] {
		case "EmailSent": // the mailer's, on no channel
		case "PaymentRegistered", "OrderPaid":
			if who != "gateway" {
				t.Errorf("row %d: %q, want the gateway's", i, c)
			}
		default:
			if who != "cust-42" || channel != "panel" {
				t.Errorf("row %d: %q, want cust-42's from the panel", i, c)
			}
		}
	}
	if got := text(t, ctx, "#chain"); got != "Hash chain intact." {
		t.Fatalf("chain %q", got)
	}
	// The state as of the change to 2 GB: back in the cart, no payment method.
	// Each click loads a page; the selected row says which one has arrived.
	run(t, ctx, chromedp.Click(chromedp.CSS("#events tbody tr:nth-child(6) a.asof")),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr.selected:nth-child(6)")))
	state := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#state-fields tbody tr')].map(r => [r.children[0].textContent, r.children[1].textContent]))`)
	if state["Status"] != "cart" || state["PaymentMethod"] != "" || !strings.Contains(state["Quote"], `"gb":2`) {
		t.Fatalf("state as of OrderModified: %v", state)
	}
	if got := text(t, ctx, "#state-h"); !strings.HasSuffix(got, " 5") {
		t.Fatalf("state heading %q", got)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS("#events tbody tr:last-child a.asof")),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr.selected:last-child")))
	state = eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('#state-fields tbody tr')].map(r => [r.children[0].textContent, r.children[1].textContent]))`)
	if state["Status"] != "paid" || state["PaymentMethod"] != "bank-transfer" {
		t.Fatalf("state as of OrderPaid: %v", state)
	}

	// The subscription's timeline starts with its opening, by the operator.
	run(t, ctx, chromedp.Navigate(p.url+"/console/timeline?id="+w.sub), chromedp.WaitVisible(chromedp.CSS("#events")))
	first := eval[[]string](t, ctx, `[...document.querySelector('#events tbody tr').children].map(c => c.textContent.trim())`)
	if first[3] != "SubscriptionOpened" || first[4] != "ops-1" {
		t.Fatalf("the subscription's first event %q", first)
	}

	// The read models, each at the log's head.
	run(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/console/models"]`)), chromedp.WaitVisible(chromedp.CSS("#models")))
	models := eval[[][]string](t, ctx, `[...document.querySelectorAll('#models tbody tr')].map(r => [...r.children].map(c => c.textContent.trim()))`)
	if len(models) != len(projections.ModelNames) {
		t.Fatalf("models %q", models)
	}
	for _, m := range models {
		if m[2] == "0" || m[5] == "" {
			t.Errorf("model row %q", m)
		}
	}

	// The log's verification, by clicking.
	run(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/console/log"]`)), chromedp.WaitVisible(chromedp.CSS("#verify")),
		chromedp.Click(chromedp.CSS("#verify")), chromedp.WaitVisible(chromedp.CSS("#verdict")))
	if got := text(t, ctx, "#verdict"); !strings.HasPrefix(got, "Intact") {
		t.Fatalf("verdict %q", got)
	}
	if got := text(t, ctx, "#checkpoints"); !strings.Contains(got, "Signed checkpoints") {
		t.Fatalf("checkpoints section %q", got)
	}

	// The same page in Italian.
	run(t, ctx, chromedp.Click(chromedp.CSS(`a[hreflang="it"]`)), chromedp.WaitReady(chromedp.CSS(`html[lang="it"] #verify`)))
	if got := text(t, ctx, "#verify"); got != "Verifica il registro" {
		t.Fatalf("the Italian button %q", got)
	}
}
