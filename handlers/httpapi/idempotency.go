package httpapi

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	storejs "github.com/einvoice/spaceorders/eventstore/jetstream"
)

// HeaderIdempotencyKey names a command so that a retry gets the first answer again.
const HeaderIdempotencyKey = "Idempotency-Key"

// idempotency remembers the answers of commands sent with an Idempotency-Key, per caller
// and route, for a while. In memory it coordinates concurrent requests with the same key
// and caches answers; with a key-value bucket (IdempotencyKV) answers are also cached
// across restarts and replicas, and the request each key came with is remembered, so that
// the key reused with another request is refused.
//
// Neither is the truth: the key also determines the ids the command creates and the ids of
// its events (command.IdempotencyKey), so a retry the caches cannot answer (after a crash,
// on another replica, with the bucket gone) runs the command again, finds in the log what
// the first attempt wrote, and answers that, without deciding anything twice.
type idempotency struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]*list.Element
	order   *list.List // front: newest
	kv      jetstream.KeyValue
	log     *zap.Logger
	// watch bounds a write to the bucket by the store's faults (Options.WatchWrites): on a
	// full disk the server never answers it.
	watch func(context.Context) (context.Context, context.CancelFunc)
}

type idemEntry struct {
	key   string
	print [32]byte
	at    time.Time
	done  chan struct{}
	resp  *recorded // nil until done; nil after done means "not kept, run again"
	// durable: this request holds the key's claim in the bucket and must settle it.
	durable bool
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

// durableAnswer is a key's record in the bucket: a claim while the first request runs
// (Done false), then its answer.
type durableAnswer struct {
	Print  []byte      `json:"print"`
	At     time.Time   `json:"at"`
	Done   bool        `json:"done"`
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
}

// IdempotencyBucket is the default key-value bucket of Idempotency-Key answers.
const IdempotencyBucket = "IDEMPOTENCY"

// claimPatience is how long a request waits for another one (another replica, or a
// process that died) holding its key's claim before it runs the command itself. Running it
// twice is safe (the log answers the second run), so the wait only spares work: it stays
// well within a client's timeout.
const claimPatience = 3 * time.Second

// NewIdempotencyBucket creates (or updates) the key-value bucket that keeps Idempotency-Key
// answers durably, for ttl, on js's server, with that many replicas on a cluster.
func NewIdempotencyBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	// A cluster may still be electing its leader, or another replica creating the bucket:
	// Ensure waits and retries, within ctx's deadline or its own bound, as for every stream.
	err := storejs.Ensure(ctx, "idempotency bucket", replicas, func(ctx context.Context) error {
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      IdempotencyBucket,
			Description: "answers of commands sent with an Idempotency-Key, by caller and key",
			TTL:         ttl,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency bucket %s: %w", IdempotencyBucket, err)
	}
	return kv, nil
}

func newIdempotency(ttl time.Duration, max int, kv jetstream.KeyValue, log *zap.Logger,
	watch func(context.Context) (context.Context, context.CancelFunc)) *idempotency {
	if watch == nil {
		watch = context.WithCancel
	}
	return &idempotency{ttl: ttl, max: max, entries: map[string]*list.Element{}, order: list.New(), kv: kv, log: log, watch: watch}
}

func fingerprint(r *http.Request, body []byte) [32]byte {
	h := sha256.New()
	for _, s := range []string{r.Method, r.URL.Path, r.Header.Get("If-Match")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// begin claims key for a request with fingerprint fp. It returns either a recorded answer
// to replay, or an entry the caller must finish; reused is true when the key came with
// another request.
func (s *idempotency) begin(ctx context.Context, key string, fp [32]byte) (replay *recorded, mine *idemEntry, reused bool, err error) {
	for {
		s.mu.Lock()
		now := time.Now()
		if el, ok := s.entries[key]; ok {
			e := el.Value.(*idemEntry)
			if now.Sub(e.at) > s.ttl {
				s.remove(el)
			} else {
				s.mu.Unlock()
				if e.print != fp {
					return nil, nil, true, nil
				}
				select { // the first request is still running: wait for its answer
				case <-e.done:
				case <-ctx.Done():
					return nil, nil, false, ctx.Err()
				}
				if e.resp != nil {
					return e.resp, nil, false, nil
				}
				continue // the first failed and was forgotten: try to run it ourselves
			}
		}
		e := &idemEntry{key: key, print: fp, at: now, done: make(chan struct{})}
		s.entries[key] = s.order.PushFront(e)
		for s.order.Len() > s.max {
			s.remove(s.order.Back())
		}
		s.mu.Unlock()
		if s.kv == nil {
			return nil, e, false, nil
		}
		// Not known in memory: the bucket may know it from before a restart.
		rec, otherPrint, err := s.claim(ctx, e)
		switch {
		case err != nil && ctx.Err() != nil:
			s.drop(e)
			return nil, nil, false, err
		case err != nil:
			// The bucket is a cache: without it the command still runs, and the log
			// answers a retry.
			s.warn(err)
			return nil, e, false, nil
		case otherPrint:
			s.drop(e)
			return nil, nil, true, nil
		case rec != nil:
			s.mu.Lock()
			e.resp = rec
			s.mu.Unlock()
			close(e.done)
			return rec, nil, false, nil
		}
		return nil, e, false, nil
	}
}

func kvKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// claim takes the key in the bucket for e's request, or finds the answer recorded there.
// A claim held by another request is waited for, for claimPatience at most, then taken over.
func (s *idempotency) claim(parent context.Context, e *idemEntry) (rec *recorded, otherPrint bool, err error) {
	ctx, cancel := s.watch(parent)
	defer cancel()
	defer func() {
		// A fault of the store (not the request's end) is the bucket failing: a cache.
		if err != nil && parent.Err() == nil && context.Cause(ctx) != nil {
			err = fmt.Errorf("idempotency bucket: %w", context.Cause(ctx))
		}
	}()
	k := kvKey(e.key)
	mine, _ := json.Marshal(durableAnswer{Print: e.print[:], At: time.Now()})
	giveUp := time.Now().Add(claimPatience)
	for {
		_, err := s.kv.Create(ctx, k, mine)
		if err == nil {
			e.durable = true
			return nil, false, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, fmt.Errorf("idempotency bucket: %w", err)
		}
		entry, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("idempotency bucket: %w", err)
		}
		var d durableAnswer
		if err := json.Unmarshal(entry.Value(), &d); err != nil {
			return nil, false, fmt.Errorf("idempotency bucket: record of a key: %w", err)
		}
		switch {
		case !bytes.Equal(d.Print, e.print[:]):
			return nil, true, nil
		case d.Done:
			return &recorded{status: d.Status, header: d.Header, body: d.Body}, false, nil
		case time.Since(d.At) > claimPatience || time.Now().After(giveUp):
			if _, err := s.kv.Update(ctx, k, mine, entry.Revision()); err == nil {
				e.durable = true
				return nil, false, nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *idempotency) warn(err error) {
	if s.log != nil {
		s.log.Warn("idempotency bucket unavailable; the log answers retries", zap.Error(err))
	}
}

// drop forgets e without an answer, waking whoever waits on it.
func (s *idempotency) drop(e *idemEntry) {
	s.mu.Lock()
	if el, ok := s.entries[e.key]; ok && el.Value == e {
		s.remove(el)
	}
	s.mu.Unlock()
	close(e.done)
}

// finish records the answer of e's request, durably first when e holds a claim. Server
// errors are not kept: a retry runs again.
func (s *idempotency) finish(e *idemEntry, rec *recorded) error {
	var err error
	if e.durable {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ctx, unwatch := s.watch(ctx)
		defer unwatch()
		k := kvKey(e.key)
		if rec.retryable() {
			err = s.kv.Delete(ctx, k)
		} else {
			b, _ := json.Marshal(durableAnswer{Print: e.print[:], At: e.at, Done: true,
				Status: rec.status, Header: rec.header, Body: rec.body})
			_, err = s.kv.Put(ctx, k, b)
		}
		cancel()
		if err != nil {
			err = fmt.Errorf("idempotency bucket: %w", err)
		}
	}
	s.mu.Lock()
	if rec.retryable() {
		if el, ok := s.entries[e.key]; ok && el.Value == e {
			s.remove(el)
		}
	} else {
		e.resp = rec
	}
	s.mu.Unlock()
	close(e.done)
	return err
}

// retryable reports whether an answer says "try again" rather than what the command did:
// a server error, a version conflict that outlasted the retries, or another order in
// progress (it may be this very request's, from an attempt whose answer was lost). Kept
// under the key, it would answer every retry of the same request the same way for a day,
// and could hide a success.
func (r *recorded) retryable() bool {
	if r.status >= 500 {
		return true
	}
	if r.status != http.StatusConflict {
		return false
	}
	var p struct {
		Code string `json:"code"`
	}
	return json.Unmarshal(r.body, &p) == nil && (p.Code == CodeConflict || p.Code == domain.ErrOrderInProgress.Code)
}

func (s *idempotency) remove(el *list.Element) {
	s.order.Remove(el)
	delete(s.entries, el.Value.(*idemEntry).key)
}

// recorder holds what a handler writes (the headers go to the real writer's map), so that
// the answer is recorded before the client sees it.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}

// flush sends the held answer.
func (r *recorder) flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.ResponseWriter.WriteHeader(r.status)
	_, _ = r.ResponseWriter.Write(r.buf.Bytes())
}

func (r *recorder) result() *recorded {
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Location", "ETag"} {
		if v := r.Header().Get(k); v != "" {
			h.Set(k, v)
		}
	}
	return &recorded{status: r.status, header: h, body: bytes.Clone(r.buf.Bytes())}
}

func (rec *recorded) replay(w http.ResponseWriter) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body)
}
