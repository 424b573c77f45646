package httpapi

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"
)

// HeaderIdempotencyKey names a command so that a retry gets the first answer again.
const HeaderIdempotencyKey = "Idempotency-Key"

// idempotency remembers the answers of commands sent with an Idempotency-Key, per caller,
// in memory, for a while (see the report: a restart forgets them; the domain's own
// idempotence — same payment reference, same toggle, one order per subscription — then
// keeps a retry from doing harm).
type idempotency struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]*list.Element
	order   *list.List // front: newest
}

type idemEntry struct {
	key   string
	print [32]byte
	at    time.Time
	done  chan struct{}
	resp  *recorded // nil until done; nil after done means "not kept, run again"
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

func newIdempotency(ttl time.Duration, max int) *idempotency {
	return &idempotency{ttl: ttl, max: max, entries: map[string]*list.Element{}, order: list.New()}
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
		return nil, e, false, nil
	}
}

// finish records the answer of e's request. Server errors are not kept: a retry runs again.
func (s *idempotency) finish(e *idemEntry, rec *recorded) {
	s.mu.Lock()
	if rec.status >= 500 {
		if el, ok := s.entries[e.key]; ok && el.Value == e {
			s.remove(el)
		}
	} else {
		e.resp = rec
	}
	s.mu.Unlock()
	close(e.done)
}

func (s *idempotency) remove(el *list.Element) {
	s.order.Remove(el)
	delete(s.entries, el.Value.(*idemEntry).key)
}

// recorder keeps a copy of what a handler writes.
type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
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
