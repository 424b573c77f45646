package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/einvoice/spaceorders/eventstore"
)

// A signed checkpoint is an event in the log itself, so that exports and imports carry it:
// the type below on a stream of its own category, which the read models ignore.
const (
	CheckpointType     = eventstore.LogCheckpointType
	CheckpointVersion  = 1
	CheckpointCategory = "logcheckpoint"
)

// checkpointDomain separates these signatures from any other use of the key.
const checkpointDomain = "spaceorders-log-checkpoint/1"

// Checkpoint is the head of the log as orderd saw it, signed with its checkpoint key
// (Ed25519, kept apart from the token-signing key). It signs the running log digest after
// the first Events events; Position is where the last of them was in the store that signed
// it (informative: positions change on a move between stores, the event count does not).
type Checkpoint struct {
	Position  uint64    `json:"position"`
	Events    uint64    `json:"events"`
	Digest    string    `json:"digest"`
	SignedAt  time.Time `json:"signedAt"`
	KeyID     string    `json:"keyId"`
	Signature string    `json:"signature"`
}

// KeyID names a public key: the hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func (c Checkpoint) signed() []byte {
	return fmt.Appendf(nil, "%s\nposition=%d\nevents=%d\ndigest=%s\nsignedAt=%s\nkey=%s\n",
		checkpointDomain, c.Position, c.Events, strings.ToLower(c.Digest), c.SignedAt.UTC().Format(time.RFC3339Nano), c.KeyID)
}

// SignCheckpoint signs the log digest d with key at time at.
func SignCheckpoint(key ed25519.PrivateKey, d Digest, at time.Time) Checkpoint {
	c := Checkpoint{Position: d.Position, Events: d.Events, Digest: d.Sum, SignedAt: at.UTC(),
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signed()))
	return c
}

// Errors of Checkpoint.Verify.
var (
	ErrUnknownCheckpointKey = errors.New("signed with a key that was not given")
	ErrBadCheckpointSig     = errors.New("the signature does not verify: the checkpoint was altered or forged")
)

// Verify checks the signature with the key among keys whose id the checkpoint names.
func (c Checkpoint) Verify(keys []ed25519.PublicKey) error {
	for _, k := range keys {
		if KeyID(k) != c.KeyID {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(c.Signature)
		if err != nil || !ed25519.Verify(k, c.signed(), sig) {
			return ErrBadCheckpointSig
		}
		return nil
	}
	return fmt.Errorf("%w (key %s)", ErrUnknownCheckpointKey, c.KeyID)
}

// ParseCheckpoint reads a checkpoint event's payload.
func ParseCheckpoint(env eventstore.Envelope) (Checkpoint, error) {
	var c Checkpoint
	if err := json.Unmarshal(env.Payload, &c); err != nil {
		return c, fmt.Errorf("unreadable checkpoint: %w", err)
	}
	return c, nil
}

// IsCheckpoint reports whether env is a signed checkpoint event.
func IsCheckpoint(env eventstore.Envelope) bool {
	return env.Type == CheckpointType && strings.HasPrefix(env.Stream, CheckpointCategory+"-")
}

// CheckpointFailure is the first checkpoint of a log that does not hold: the log was
// changed after the last good checkpoint and at or before the failing one.
type CheckpointFailure struct {
	// At is the checkpoint event that failed.
	At Place `json:"at"`
	// Signed is what it signs.
	Signed Checkpoint `json:"signed"`
	// After is the last checkpoint that held, nil when none did: the change is after it.
	After  *Checkpoint `json:"after,omitempty"`
	Detail string      `json:"detail"`
}

func (f *CheckpointFailure) Error() string {
	from := "the start of the log"
	if f.After != nil {
		from = fmt.Sprintf("event %d (position %d, the last good checkpoint)", f.After.Events, f.After.Position)
	}
	return fmt.Sprintf("checkpoint at %s: %s; the log was changed after %s and at or before event %d (position %d as signed)",
		f.At, f.Detail, from, f.Signed.Events, f.Signed.Position)
}

// CheckpointReport says what the checkpoints of a log showed.
type CheckpointReport struct {
	// Verified checkpoints held: signature good, digest equal.
	Verified int `json:"verified"`
	// Unchecked checkpoints could not be judged: no key was given, or they came after a
	// chain break.
	Unchecked int `json:"unchecked"`
	// Last is the last checkpoint that held.
	Last *Checkpoint `json:"last,omitempty"`
	// Failure is the first that did not, nil when none failed.
	Failure *CheckpointFailure `json:"failure,omitempty"`
}

type commitEnd struct {
	events   uint64
	position uint64
	sum      [sha256.Size]byte
}

// ringSize bounds how far behind the log a checkpoint may sign and still be checked: a
// signer signs the commit it has just folded, so the checkpoint lands a few commits later.
const ringSize = 1 << 16

// checkpointChecker remembers the log digest at recent commit ends and checks each
// checkpoint event against the digest at the event count it signs.
type checkpointChecker struct {
	keys   []ed25519.PublicKey
	ends   []commitEnd
	next   int
	report CheckpointReport
}

func newCheckpointChecker(keys []ed25519.PublicKey) *checkpointChecker {
	return &checkpointChecker{keys: keys}
}

func (c *checkpointChecker) commitEnd(events, position uint64, sum [sha256.Size]byte) {
	e := commitEnd{events, position, sum}
	if len(c.ends) < ringSize {
		c.ends = append(c.ends, e)
		return
	}
	c.ends[c.next] = e
	c.next = (c.next + 1) % ringSize
}

func (c *checkpointChecker) digestAt(events uint64) (commitEnd, bool) {
	n := len(c.ends)
	for i := 1; i <= n; i++ {
		e := c.ends[((c.next-i)%n+n)%n]
		if e.events == events {
			return e, true
		}
		if e.events < events {
			break
		}
	}
	return commitEnd{}, false
}

// check judges a checkpoint event; seen is how many events of the log came before it.
func (c *checkpointChecker) check(env eventstore.Envelope, at Place, seen uint64) {
	if c.report.Failure != nil {
		return
	}
	fail := func(cp Checkpoint, format string, args ...any) {
		c.report.Failure = &CheckpointFailure{At: at, Signed: cp, After: c.report.Last, Detail: fmt.Sprintf(format, args...)}
	}
	cp, err := ParseCheckpoint(env)
	if err != nil {
		fail(cp, "%v", err)
		return
	}
	if len(c.keys) == 0 {
		c.report.Unchecked++
		return
	}
	if err := cp.Verify(c.keys); err != nil {
		fail(cp, "%v", err)
		return
	}
	if cp.Events > seen {
		fail(cp, "it signs the first %d events, but only %d come before it: events were removed", cp.Events, seen)
		return
	}
	e, ok := c.digestAt(cp.Events)
	if !ok {
		if cp.Events == 0 {
			e = commitEnd{} // the empty log's digest: 32 zero bytes
		} else {
			fail(cp, "no commit of the log ends after event %d, where it signs: events were removed, added or regrouped", cp.Events)
			return
		}
	}
	if !strings.EqualFold(hex.EncodeToString(e.sum[:]), cp.Digest) {
		fail(cp, "it signs the log digest %s after %d events, the log has %s there", short(cp.Digest), cp.Events, short(hex.EncodeToString(e.sum[:])))
		return
	}
	c.report.Verified++
	last := cp
	c.report.Last = &last
}

// ResumeDigester is a Digester that continues from d, a digest taken earlier of the same
// log (a signer that kept its place).
func ResumeDigester(d Digest) (Digester, error) {
	var g Digester
	b, err := hex.DecodeString(d.Sum)
	if err != nil || len(b) != sha256.Size {
		return g, fmt.Errorf("digest %q is not %d hex bytes", d.Sum, sha256.Size)
	}
	copy(g.sum[:], b)
	g.pos, g.events = d.Position, d.Events
	return g, nil
}
