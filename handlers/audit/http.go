package audit

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
)

// ProblemBase is the prefix of problem types, the same as the HTTP API's.
const ProblemBase = "https://spaceorders.example/problems/"

// Limits of a page of the audit endpoints.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// API serves the read-only audit endpoints. It applies no authentication: the router
// mounts it behind the auditor role.
type API struct {
	store eventstore.Store
	log   *zap.Logger
}

// NewAPI returns the audit endpoints over store; log (nil: none) receives the store errors
// that the client is answered only a 500 for.
func NewAPI(store eventstore.Store, log *zap.Logger) *API {
	if log == nil {
		log = zap.NewNop()
	}
	return &API{store: store, log: log}
}

// Register mounts both endpoints on mux:
//
//	GET /v1/audit/streams/{stream}?from=<version>&limit=<n>
//	GET /v1/audit/events?after=<position>&limit=<n>
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/audit/streams/{stream}", a.Stream)
	mux.HandleFunc("GET /v1/audit/events", a.Events)
}

// Handler is the two endpoints on their own mux, for a router that wraps it whole.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// Event is an event as the audit endpoints answer it: the stored envelope (position,
// index, count, metadata with prevHash, payload) and its own chain hash.
type Event struct {
	eventstore.Envelope
	Hash string `json:"hash"`
}

// StreamPage is the answer of GET /v1/audit/streams/{stream}.
type StreamPage struct {
	Stream string  `json:"stream"`
	Events []Event `json:"events"`
	// Next is the from of the next page; absent on the last page.
	Next *uint64 `json:"next,omitempty"`
	// ChainIntact tells whether the page's events link to each other (and, from version 0,
	// to the stream's start); Break says where they do not.
	ChainIntact bool   `json:"chainIntact"`
	Break       *Break `json:"break,omitempty"`
}

// EventsPage is the answer of GET /v1/audit/events.
type EventsPage struct {
	Events []Event `json:"events"`
	// Next is the after of the next page: the last position answered (positions are opaque:
	// only one the log answered may be passed back). Absent when the page reached the head.
	Next *uint64 `json:"next,omitempty"`
	Head uint64  `json:"head"`
}

// Stream answers a stream's events from version `from` (default 0), at most limit of them.
func (a *API) Stream(w http.ResponseWriter, r *http.Request) {
	stream := r.PathValue("stream")
	if _, _, err := eventstore.ParseStream(stream); err != nil {
		problem(w, r, http.StatusBadRequest, "malformed-request", "The stream name is not <category>-<uuid>.")
		return
	}
	from, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	envs, err := a.store.ReadStream(r.Context(), stream, from)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		problem(w, r, http.StatusNotFound, "not-found", "No such stream.")
		return
	case err != nil:
		a.storeProblem(w, r, err)
		return
	}
	page := StreamPage{Stream: stream, Events: []Event{}, ChainIntact: true}
	if len(envs) > limit {
		next := envs[limit].StreamVersion
		page.Next = &next
		envs = envs[:limit]
	}
	prev := ""
	for i, env := range envs {
		h := eventstore.HashEnvelope(env)
		if page.ChainIntact && (i > 0 || from == 0) && env.Metadata.PrevHash != prev {
			page.ChainIntact = false
			page.Break = &Break{Kind: BrokenLink, At: placeOf(env, 0), Detail: "prevHash is not the hash of the event before it"}
			if i > 0 {
				p := placeOf(envs[i-1], 0)
				page.Break.Prev = &p
			}
		}
		prev = h
		page.Events = append(page.Events, Event{Envelope: env, Hash: h})
	}
	writeJSON(w, page)
}

// Events answers the log's events after position `after` (exclusive: 0, the default, is
// the start; otherwise a position the log answered, an event's or a page's next), whole
// commits of at least limit events.
func (a *API) Events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("from") {
		problem(w, r, http.StatusBadRequest, "malformed-request", "from is not a parameter of the log: pass after=<position>, 0 or a position the log answered (an event's position, a page's next).")
		return
	}
	after, ok := positionParam(w, r, q.Get("after"))
	if !ok {
		return
	}
	_, limit, ok := pageParams(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	head, err := a.store.Head(ctx)
	if err != nil {
		a.storeProblem(w, r, err)
		return
	}
	page := EventsPage{Events: []Event{}, Head: head}
	if after < head {
		envs, err := a.store.ReadAll(ctx, after, limit)
		if errors.Is(err, eventstore.ErrInvalidPosition) {
			problem(w, r, http.StatusBadRequest, "malformed-request", "after is not a position of this log: pass 0 or a position the log answered.")
			return
		}
		if err != nil {
			a.storeProblem(w, r, err)
			return
		}
		for _, env := range envs {
			page.Events = append(page.Events, Event{Envelope: env, Hash: eventstore.HashEnvelope(env)})
		}
		if n := len(envs); n > 0 && envs[n-1].Position < head {
			next := envs[n-1].Position
			page.Next = &next
		}
	}
	writeJSON(w, page)
}

// positionParam parses an `after` of the log: empty is 0.
func positionParam(w http.ResponseWriter, r *http.Request, s string) (uint64, bool) {
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		problem(w, r, http.StatusBadRequest, "malformed-request", "after must be a non-negative integer: 0 or a position the log answered.")
		return 0, false
	}
	return v, true
}

func pageParams(w http.ResponseWriter, r *http.Request) (from uint64, limit int, ok bool) {
	q := r.URL.Query()
	limit = DefaultLimit
	if s := q.Get("from"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			problem(w, r, http.StatusBadRequest, "malformed-request", "from must be a non-negative integer.")
			return 0, 0, false
		}
		from = v
	}
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > MaxLimit {
			problem(w, r, http.StatusBadRequest, "malformed-request", "limit must be an integer from 1 to "+strconv.Itoa(MaxLimit)+".")
			return 0, 0, false
		}
		limit = v
	}
	return from, limit, true
}

type problemBody struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code"`
}

func problem(w http.ResponseWriter, r *http.Request, status int, code, title string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problemBody{Type: ProblemBase + code, Title: title, Status: status, Instance: r.URL.Path, Code: code})
}

// storeProblem hides the store's error text (it may name servers) from the client.
func (a *API) storeProblem(w http.ResponseWriter, r *http.Request, err error) {
	if ctxErr := r.Context().Err(); ctxErr != nil {
		problem(w, r, http.StatusServiceUnavailable, "unavailable", "The request was not completed in time.")
		return
	}
	a.log.Error("audit: read the store", zap.String("path", r.URL.Path), zap.Error(err))
	problem(w, r, http.StatusInternalServerError, "internal-error", "Something went wrong on our side.")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
