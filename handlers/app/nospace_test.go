// The full-disk recovery restarts JetStream inside the running server, and nats-server
// v2.15 re-enabling JetStream writes its API queues without a lock its clients' earlier
// requests took: the race detector reports the server's own fields, whatever this code
// does. So these tests are built without -race; .ci/run runs them in a step of their own
// (go test -run FullDisk ./handlers/app/ ./eventstore/jetstream/), and every other test
// of the tree runs under -race.

//go:build !race

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// The whole product on a small disk that fills up: commands answer 507 at once with a
// problem that says so, /readyz answers 503, and once space is freed (no restart) /readyz
// is 200 again, commands succeed, the read models follow, every command that was answered
// 2xx has its events in the log, and nothing is there twice.
//
// A 507 says the command was not acknowledged, not that nothing was written: the server
// may still flush a write it failed once space is back. A retry with the same
// Idempotency-Key answers what the log holds, so every command here carries one and the
// refused ones are retried after the recovery.
func TestAFullDiskAnswers507AndRecoversWithoutRestart(t *testing.T) {
	dir := jstest.SmallDisk(t, 32<<20)
	cfg := testConfig(dir)
	cfg.RelaxedSync = false // as in production: every append fsynced
	r := startApp(t, cfg)
	op := r.token(tokens.RoleOperator, "op")

	var acked []string // subscription ids of commands answered 2xx
	bodies := map[string]map[string]any{}
	send := func(key string) answer {
		if bodies[key] == nil {
			bodies[key] = openBody("cust-" + key)
		}
		a := r.do("POST", "/v1/subscriptions", op, bodies[key], "Idempotency-Key", key)
		if a.status/100 == 2 {
			acked = append(acked, a.field(t, "subscriptionId").(string))
		}
		return a
	}
	open := func() answer { return send(uuid.NewString()) }
	for range 5 {
		r.must(open(), 201)
	}
	filler := jstest.Fill(t, dir)

	// A write may still fit in a page the store's file already has: the disk is full once
	// a command is refused.
	var refusedKeys []string
	for i := 0; len(refusedKeys) < 3; i++ {
		if i == 100 {
			t.Fatalf("100 commands answered 2xx on a full disk")
		}
		key := uuid.NewString()
		start := time.Now()
		a := send(key)
		took := time.Since(start)
		if a.status/100 == 2 {
			continue
		}
		refusedKeys = append(refusedKeys, key)
		t.Logf("command %d refused with %d in %s", i, a.status, took.Round(time.Microsecond))
		if a.status != 507 {
			t.Fatalf("command %d on a full disk: %d %s", i, a.status, a.body)
		}
		var p httpapi.Problem
		if err := json.Unmarshal(a.body, &p); err != nil || p.Code != httpapi.CodeInsufficientStorage ||
			a.header.Get("Content-Type") != "application/problem+json" || a.header.Get("Retry-After") == "" {
			t.Fatalf("command %d: problem %+v (%v), headers %v", i, p, err, a.header)
		}
		if took > 4*time.Second { // the store's publish timeout is 5 s
			t.Errorf("command %d took %s to be refused: it waited for a write that never completes", i, took)
		}
	}
	if a := r.do("GET", "/readyz", "", nil); a.status != 503 {
		t.Fatalf("/readyz on a full disk: %d %s", a.status, a.body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	testwait.For(t, "/readyz 200 after space was freed", func() bool { return r.do("GET", "/readyz", "", nil).status == 200 })
	t.Logf("ready again %s after space was freed", time.Since(freed).Round(time.Millisecond))

	var last answer
	for range 5 {
		last = r.must(open(), 201)
	}
	// Each refused command, retried with its key, is answered: from the log when its write
	// reached the disk after all, else by running it now.
	for _, key := range refusedKeys {
		if a := send(key); a.status/100 != 2 {
			t.Fatalf("retry of a refused command: %d %s", a.status, a.body)
		}
	}
	pos := uint64(last.field(t, "position").(float64))
	sub := last.field(t, "subscriptionId").(string)
	r.must(r.do("GET", fmt.Sprintf("/v1/subscriptions/%s/quota?after=%d", sub, pos), op, nil), 200)
	// The relay and the mailer follow again too: a confirmed order is emailed.
	subOfOrder, orderID := r.confirmed("cust-after-full")
	testwait.For(t, "the payment instructions of an order confirmed after the recovery", func() bool {
		files, _ := filepath.Glob(filepath.Join(r.a.Outbox, "*.eml"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), orderID) {
				return true
			}
		}
		return false
	})

	// The log holds exactly the acknowledged commands: every subscription answered 2xx
	// (and the confirmed order's), none of the refused ones.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := map[string]bool{eventstore.StreamName("subscription", uuid.MustParse(subOfOrder)): true}
	for _, id := range acked {
		want[eventstore.StreamName("subscription", uuid.MustParse(id))] = true
	}
	all, err := r.a.Store.ReadAll(ctx, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]bool{}
	for _, e := range all {
		if e.Type == "SubscriptionOpened" {
			if opened[e.Stream] {
				t.Errorf("%s opened twice", e.Stream)
			}
			opened[e.Stream] = true
			if !want[e.Stream] {
				t.Errorf("%s is in the log, but no answer gave it", e.Stream)
			}
		}
	}
	for s := range want {
		if !opened[s] {
			t.Errorf("%s was acknowledged but is not in the log", s)
		}
	}
}
