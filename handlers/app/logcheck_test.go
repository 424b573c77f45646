package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/command"
)

// domainCommits counts the log's commits other than the signed checkpoints of its head.
func domainCommits(t *testing.T, s eventstore.Store) int {
	t.Helper()
	n, after := 0, uint64(0)
	for {
		page, err := s.ReadAll(context.Background(), after, 1000)
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		if len(page) == 0 {
			return n
		}
		for _, env := range page {
			if env.Index == 0 && env.Type != eventstore.LogCheckpointType {
				n++
			}
		}
		after = page[len(page)-1].Position
	}
}

// damagedCopy runs orderd on a fresh folder, lets write run, stops it, and returns a copy
// of the folder with one byte flipped in a block file where marker is (the last
// occurrence when last).
func damagedCopy(t *testing.T, write func(r *running), marker string, last bool) (dir string) {
	t.Helper()
	orig := t.TempDir()
	r := startApp(t, testConfig(orig))
	write(r)
	r.stop()
	dir = t.TempDir()
	jstest.CopyDir(t, orig, dir)
	jstest.FlipByte(t, filepath.Join(dir, "jetstream"), marker, last)
	return dir
}

// A byte flipped inside a payment in a block file: the server drops that commit on
// recovery; orderd refuses to start, naming the position, and starts with the flag.
func TestOrderdRefusesALogWithAMissingPosition(t *testing.T) {
	var payment uint64
	dir := damagedCopy(t, func(r *running) {
		_, orderID := r.confirmed("cust-flip")
		r.confirmed("cust-before")
		id := uuid.MustParse(orderID)
		o, _, _, err := r.a.Commands.Order(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.a.Commands.ExecuteOrder(context.Background(), id,
			domain.RegisterPayment{AmountCents: o.DueCents(), Method: o.PaymentMethod, Reference: "CRO-FLIP"},
			command.Meta{Actor: "payments:gw"}, nil); err != nil {
			t.Fatal(err)
		}
		r.confirmed("cust-after")
		envs, err := r.a.Store.ReadStream(context.Background(), eventstore.StreamName(command.OrderCategory, id), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs {
			if env.Type == "PaymentRegistered" {
				payment = env.Position
			}
		}
	}, `"reference":"CRO-FLIP"`, false)

	_, err := New(context.Background(), testConfig(dir), nil)
	if !errors.Is(err, ErrDamagedLog) || !strings.Contains(err.Error(), fmt.Sprintf("position %d holds no commit", payment)) {
		t.Fatalf("start on the damaged copy: %v; want a refusal naming position %d", err, payment)
	}
	t.Logf("refused: %v", err)
	cfg := testConfig(dir)
	cfg.AllowDamagedLog = true
	startApp(t, cfg).stop()
}

// The last commit lost (a byte flipped in the shutdown checkpoint, the log's last
// message): the data folder's last checkpoint is gone from the log, and orderd refuses to
// start.
func TestOrderdRefusesALogThatLostItsTail(t *testing.T) {
	dir := damagedCopy(t, func(r *running) { r.confirmed("cust-tail") }, `"signature":"`, true)
	_, err := New(context.Background(), testConfig(dir), nil)
	var lost *checkpoint.TailLost
	if !errors.Is(err, ErrDamagedLog) || !errors.As(err, &lost) {
		t.Fatalf("start on a log without its last commit: %v; want a refusal", err)
	}
	// The server kept the lost message's sequence as its last: the position is named too.
	if want := fmt.Sprintf("position %d holds no commit", lost.State.WrittenAt); !strings.Contains(err.Error(), want) {
		t.Fatalf("%v: want %q", err, want)
	}
	t.Logf("refused: %v", err)
}

// A second start over the same log signs nothing new when nothing happened: the shutdown
// checkpoint is not itself a reason for another one.
func TestRestartOnAQuietLogAddsNoCheckpoint(t *testing.T) {
	dir := t.TempDir()
	r := startApp(t, testConfig(dir))
	r.confirmed("cust-quiet")
	r.stop()
	head := func(r *running) uint64 { h, _ := r.a.Store.Head(context.Background()); return h }
	r = startApp(t, testConfig(dir))
	before := head(r)
	r.stop()
	r = startApp(t, testConfig(dir))
	if after := head(r); after != before {
		t.Fatalf("head %d after a quiet restart, was %d", after, before)
	}
	r.stop()
}
