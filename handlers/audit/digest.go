package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/einvoice/spaceorders/eventstore"
)

// Digest is the running digest of the log up to a position, in the manner of a QLDB
// journal digest: d_0 is 32 zero bytes and d_n = SHA-256(d_{n-1} || h_n), where h_n is the
// 32 bytes of eventstore.Hash of the n-th event in global order. Because the event hash
// leaves out the store's position and recorded time, the same log has the same digest in
// every backend, and an export, an import and the original can be compared by it.
type Digest struct {
	// Position is the last commit folded in (0 before the first event).
	Position uint64 `json:"position"`
	// Events is how many events are folded in.
	Events uint64 `json:"events"`
	// Sum is the digest, hex.
	Sum string `json:"digest"`
}

// Digester folds events into the running log digest. The zero value is d_0.
type Digester struct {
	sum    [sha256.Size]byte
	pos    uint64
	events uint64
	buf    [2 * sha256.Size]byte
}

// Add folds in the next event of the log and returns its chain hash.
func (d *Digester) Add(env eventstore.Envelope) string {
	h := eventstore.HashEnvelope(env)
	d.addHash(h)
	d.pos = env.Position
	return h
}

func (d *Digester) addHash(h string) {
	copy(d.buf[:sha256.Size], d.sum[:])
	if _, err := hex.Decode(d.buf[sha256.Size:], []byte(h)); err != nil || len(h) != 2*sha256.Size {
		// An unhashable event (invalid JSON) still moves the digest, to a value no intact
		// log can reach.
		sum := sha256.Sum256([]byte(h))
		copy(d.buf[sha256.Size:], sum[:])
	}
	d.sum = sha256.Sum256(d.buf[:])
	d.events++
}

// Digest is the digest so far.
func (d *Digester) Digest() Digest {
	return Digest{Position: d.pos, Events: d.events, Sum: hex.EncodeToString(d.sum[:])}
}

func (d Digest) String() string {
	return fmt.Sprintf("%s at position %d (%d events)", d.Sum, d.Position, d.Events)
}

// DigestAt is the log digest after every commit with Position <= at (at 0: the head).
func DigestAt(ctx context.Context, store eventstore.Store, at uint64, progress Progress) (Digest, error) {
	var d Digester
	errStop := fmt.Errorf("stop")
	err := readAll(ctx, store, 0, progress, func(env eventstore.Envelope) error {
		if at > 0 && env.Position > at {
			return errStop
		}
		d.Add(env)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Digest{}, err
	}
	return d.Digest(), nil
}
