package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/jetstream/jstest"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/internal/testwait"
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
	var (
		payment uint64
		stream  string
	)
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
		stream = eventstore.StreamName(command.OrderCategory, id)
		envs, err := r.a.Store.ReadStream(context.Background(), stream, 0)
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
	if want := fmt.Sprintf("position %d holds no commit (lost from %s)", payment, stream); !errors.Is(err, ErrDamagedLog) || !strings.Contains(err.Error(), want) {
		t.Fatalf("start on the damaged copy: %v; want a refusal naming %q", err, want)
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
	_, order := r.confirmed("cust-quiet")
	// The instructions recorded first: else the next start's mailer records them, and the
	// log moves for a reason that is not a checkpoint.
	testwait.For(t, "the instructions email recorded", func() bool {
		evs, err := r.a.Store.ReadStream(context.Background(), "order-"+order, 0)
		return err == nil && evs[len(evs)-1].Type == "EmailSent"
	})
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

// The damage and checkpoint settings: environment, flags over it, and bad values named.
func TestDamageAndCheckpointSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	c, err := ParseConfig(nil, env("ORDERD_ALLOW_DAMAGED_LOG", "true", "ORDERD_CHECKPOINT_EVERY", "50", "ORDERD_CHECKPOINT_INTERVAL", "10s"), io.Discard)
	if err != nil || !c.AllowDamagedLog || c.CheckpointEvery != 50 || c.CheckpointInterval != 10*time.Second {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
	c, err = ParseConfig([]string{"--allow-damaged-log=false", "--checkpoint-every", "7", "--checkpoint-interval", "2m"},
		env("ORDERD_ALLOW_DAMAGED_LOG", "true"), io.Discard)
	if err != nil || c.AllowDamagedLog || c.CheckpointEvery != 7 || c.CheckpointInterval != 2*time.Minute {
		t.Fatalf("flags over the environment: %+v, %v", c, err)
	}
	if c, err := ParseConfig(nil, env(), io.Discard); err != nil || c.AllowDamagedLog {
		t.Fatalf("default: %+v, %v: a damaged log is refused unless asked", c, err)
	}
	for _, tc := range []struct {
		args []string
		env  func(string) string
		want string
	}{
		{nil, env("ORDERD_ALLOW_DAMAGED_LOG", "perhaps"), "ORDERD_ALLOW_DAMAGED_LOG"},
		{nil, env("ORDERD_CHECKPOINT_EVERY", "many"), "ORDERD_CHECKPOINT_EVERY"},
		{nil, env("ORDERD_CHECKPOINT_INTERVAL", "often"), "ORDERD_CHECKPOINT_INTERVAL"},
		{[]string{"--checkpoint-every", "-1"}, env(), "--checkpoint-every"},
		{[]string{"--checkpoint-interval", "-1s"}, env(), "--checkpoint-interval"},
	} {
		if _, err := ParseConfig(tc.args, tc.env, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}
