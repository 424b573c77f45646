package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/supervise"
	"github.com/einvoice/spaceorders/internal/testwait"
)

func readiness(t *testing.T, r *running) (int, map[string]httpapi.Check) {
	t.Helper()
	ans := r.do("GET", "/readyz", "", nil)
	var rd httpapi.Readiness
	if err := json.Unmarshal(ans.body, &rd); err != nil {
		t.Fatalf("%d: %v: %s", ans.status, err, ans.body)
	}
	byName := map[string]httpapi.Check{}
	for _, c := range rd.Components {
		byName[c.Name] = c
	}
	if (ans.status == 200) != (rd.Status == "ready") {
		t.Fatalf("status %d with %q", ans.status, rd.Status)
	}
	return ans.status, byName
}

// /readyz names every component, and answers 503 while one of them is not ready: the read
// models behind the head they saw at start, or a part that keeps failing.
func TestReadyzSaysWhichComponentHoldsItBack(t *testing.T) {
	cfg := testConfig(t.TempDir())
	a, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	failing := make(chan struct{})
	a.Go("flaky", func(ctx context.Context) error {
		select {
		case <-failing:
			return errors.New("smtp: connection refused")
		default:
			<-ctx.Done()
			return nil
		}
	})
	close(failing) // from the first run on, it fails
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := &running{t: t, a: a}
	t.Cleanup(func() { a.Shutdown(context.Background()) })

	var c map[string]httpapi.Check
	testwait.Check(t, "the failing part in /readyz", func() error {
		var code int
		if code, c = readiness(t, r); code != 503 || c["flaky"].Ready || !strings.Contains(c["flaky"].Detail, "smtp: connection refused") {
			return fmt.Errorf("%d %+v", code, c)
		}
		return nil
	})
	for _, name := range []string{"store", "read-models", "projections", "purchases", "relay", "mailer", "sweeper", "checkpoints"} {
		if !c[name].Ready {
			t.Errorf("%s not ready: %+v", name, c[name])
		}
	}
}

func TestReadyzWaitsForTheReadModelsToCatchUpAfterStart(t *testing.T) {
	r := startApp(t, testConfig(t.TempDir()))
	r.confirmed("cust-1")
	// As if the log had been longer at start than the models have folded yet.
	r.a.caughtUp.Store(false)
	r.a.startHead.Add(1000)
	code, c := readiness(t, r)
	if code != 503 || c["read-models"].Ready || !strings.Contains(c["read-models"].Detail, "catching up") {
		t.Fatalf("behind the start head: %d %+v", code, c)
	}
	r.a.startHead.Add(^uint64(999))
	testwait.For(t, "/readyz 200 once the models hold the start head", func() bool {
		code, _ := readiness(t, r)
		return code == 200
	})
	// Latched: later appends that the models have not folded yet do not flap it.
	r.a.startHead.Add(1000)
	if code, _ := readiness(t, r); code != 200 {
		t.Fatal("readiness went back after the models had caught up once")
	}
}

// A part that cannot be restarted stops orderd: Done delivers its error.
func TestAFatalPartEndsTheApp(t *testing.T) {
	a, err := New(context.Background(), testConfig(t.TempDir()), nil)
	if err != nil {
		t.Fatal(err)
	}
	damage := errors.New("the log has a gap at position 7")
	a.Go("check", func(ctx context.Context) error { return supervise.Fatal(damage) })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	select {
	case err := <-a.Done():
		if !errors.Is(err, damage) {
			t.Fatalf("Done: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fatal failure was not reported")
	}
}

// Prometheus sees how far each follower is behind the log.
func TestMetricsShowEachFollowersLag(t *testing.T) {
	r := startApp(t, testConfig(t.TempDir()))
	r.confirmed("cust-1")
	// The mailer's consumer exists once it has started on the relay's stream.
	var body string
	testwait.For(t, "the mailer's lag in /metrics", func() bool {
		body = string(r.do("GET", "/metrics", "", nil).body)
		return strings.Contains(body, `spaceorders_follower_lag{follower="mailer"}`)
	})
	for _, f := range []string{"projections/quota", "projections/expiry", "projections/pending-payment", "purchases", "relay", "mailer"} {
		if !strings.Contains(body, `spaceorders_follower_lag{follower="`+f+`"}`) {
			t.Errorf("no lag for %s", f)
		}
	}
	if !strings.Contains(body, `spaceorders_part_up{part="relay"} 1`) {
		t.Error("no part_up for the relay")
	}
}
