package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/command"
)

// signRound runs a real signer until it has signed the head at its shutdown.
func signRound(t *testing.T, store eventstore.Store, key ed25519.PrivateKey, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := checkpoint.New(store, key, dir, checkpoint.Options{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("signer: %v", err)
	}
}

// rewrite re-marshals an export whose envelopes were edited as a forger who knows the
// format would: every prevHash relinked to the recomputed hashes, the trailer's count and
// digest recomputed. Only the signed checkpoints are left as they were.
func rewrite(t *testing.T, envs []eventstore.Envelope, trailer string) []byte {
	t.Helper()
	var (
		buf  bytes.Buffer
		dig  audit.Digester
		last = map[string]string{}
	)
	for _, env := range envs {
		env.Metadata.PrevHash = last[env.Stream]
		last[env.Stream] = dig.Add(env)
		b, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	var tr struct {
		Trailer map[string]any `json:"trailer"`
	}
	if err := json.Unmarshal([]byte(trailer), &tr); err != nil {
		t.Fatal(err)
	}
	d := dig.Digest()
	tr.Trailer["digest"], tr.Trailer["events"] = d.Sum, d.Events
	b, _ := json.Marshal(tr)
	buf.Write(b)
	buf.WriteByte('\n')
	return buf.Bytes()
}

// An export whose last event of a stream is altered, with every chain hash and the trailer
// digest recomputed, passes the chains and the trailer; the signed checkpoints catch it,
// between the last one before the change and the first one after it.
func TestACheckpointCatchesAChainRewrittenWithRecomputedDigests(t *testing.T) {
	store := embedded(t)
	dir := t.TempDir()
	key, _, err := checkpoint.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := checkpoint.PublicKeys(dir)
	seed(t, store, 2)
	signRound(t, store, key, dir)
	later := seed(t, store, 2)
	signRound(t, store, key, dir)
	seed(t, store, 1)
	signRound(t, store, key, dir)
	file, _ := export(t, store)

	ls, trailer := lines(t, file)
	envs := make([]eventstore.Envelope, len(ls))
	var cps []audit.Checkpoint
	target := -1
	for i, l := range ls {
		envs[i] = l.env
		if audit.IsCheckpoint(l.env) {
			cp, _ := audit.ParseCheckpoint(l.env)
			cps = append(cps, cp)
		}
		// The last event of the first order of the second round: its stream has no later
		// event, so no link covers it.
		if l.env.Stream == eventstore.StreamName(command.OrderCategory, later.orders[0]) {
			target = i
		}
	}
	if len(cps) != 3 || target < 0 || nextInStream(ls, target) >= 0 {
		t.Fatalf("%d checkpoints, target %d", len(cps), target)
	}
	altered := strings.Replace(string(envs[target].Payload), `"2026-01"`, `"2099-12"`, 1)
	if altered == string(envs[target].Payload) {
		t.Fatalf("nothing to alter in %s", envs[target].Payload)
	}
	envs[target].Payload = json.RawMessage(altered)
	forged := rewrite(t, envs, trailer)

	if _, err := audit.VerifyExport(bytes.NewReader(forged), nil); err != nil {
		t.Fatalf("the forgery is not a careful one: the chains and trailer already fail: %v", err)
	}
	res, err := audit.CheckExport(bytes.NewReader(forged), audit.CheckOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Checkpoints.Failure
	if f == nil || res.Break != nil || res.Damage != nil {
		t.Fatalf("check: %+v; want only a checkpoint failure", res)
	}
	t.Logf("found: %v", f)
	n := uint64(target + 1) // events up to and including the altered one
	if f.After == nil || *f.After != cps[0] || f.Signed != cps[1] || !(f.After.Events < n && n <= f.Signed.Events) {
		t.Fatalf("failure %v: want it located between the first checkpoint (%d events) and the second (%d), around event %d",
			f, cps[0].Events, cps[1].Events, n)
	}
	if res.Checkpoints.Verified != 1 {
		t.Fatalf("%d checkpoints verified, want the first one", res.Checkpoints.Verified)
	}

	// The untouched export passes with the key; without one, the checkpoints are only counted.
	if res, err := audit.CheckExport(bytes.NewReader(file), audit.CheckOptions{Keys: keys}); err != nil || res.Err() != nil || res.Checkpoints.Verified != 3 {
		t.Fatalf("the original: %+v, %v", res, err)
	}
	if res, _ := audit.CheckExport(bytes.NewReader(forged), audit.CheckOptions{}); res.Err() != nil || res.Checkpoints.Unchecked != 3 {
		t.Fatalf("without a key: %+v", res)
	}
}
