package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/projections"
)

// ErrReadOnly: the remote log only reads.
var ErrReadOnly = errors.New("audit: the remote log is read-only")

// Remote is a running orderd seen through its HTTP API with a bearer token: its read
// models' status and, through the audit endpoints, its log.
type Remote struct {
	base  string
	token string
	http  *http.Client
}

// NewRemote returns the orderd at base URL (http://host:port); client nil means
// http.DefaultClient.
func NewRemote(base, token string, client *http.Client) (*Remote, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: not an http:// or https:// URL", base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Remote{base: strings.TrimRight(base, "/"), token: token, http: client}, nil
}

// projectionsBody is the answer of GET /v1/projections.
type projectionsBody struct {
	Models []projections.ModelStatus `json:"models"`
}

// Projections is what the server reports of its read models: GET /v1/projections.
func (r *Remote) Projections(ctx context.Context) ([]projections.ModelStatus, error) {
	var body projectionsBody
	if err := r.get(ctx, "/v1/projections", &body); err != nil {
		return nil, err
	}
	return body.Models, nil
}

// Log is the server's log read through the audit endpoints, as a read-only store:
// ReadAll, Head and ReadStream answer, the rest (Subscribe too, so not projections.AsOf)
// says ErrReadOnly. The events are the stored envelopes as the JSON answer carries them.
func (r *Remote) Log() eventstore.Store { return remoteLog{r} }

type remoteLog struct{ r *Remote }

func (l remoteLog) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Envelope, error) {
	limit = min(max(limit, 1), MaxLimit)
	var page EventsPage
	if err := l.r.get(ctx, fmt.Sprintf("/v1/audit/events?after=%d&limit=%d", after, limit), &page); err != nil {
		return nil, err
	}
	envs := make([]eventstore.Envelope, len(page.Events))
	for i, e := range page.Events {
		envs[i] = e.Envelope
	}
	return envs, nil
}

func (l remoteLog) Head(ctx context.Context) (uint64, error) {
	var page EventsPage
	// After any position, the page holds no events, only the head (the log is not read).
	if err := l.r.get(ctx, "/v1/audit/events?limit=1&after="+strconv.FormatUint(math.MaxUint64, 10), &page); err != nil {
		return 0, err
	}
	return page.Head, nil
}

func (remoteLog) Append(context.Context, string, eventstore.Expected, ...eventstore.EventData) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, ErrReadOnly
}

// ReadStream pages through GET /v1/audit/streams/{stream}; a 404 is ErrStreamNotFound.
func (l remoteLog) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Envelope, error) {
	var envs []eventstore.Envelope
	for {
		var page StreamPage
		err := l.r.get(ctx, fmt.Sprintf("/v1/audit/streams/%s?from=%d&limit=%d", url.PathEscape(stream), from, MaxLimit), &page)
		if errors.Is(err, errNotFound) {
			return nil, fmt.Errorf("%s: %w", stream, eventstore.ErrStreamNotFound)
		}
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			envs = append(envs, e.Envelope)
		}
		if page.Next == nil {
			return envs, nil
		}
		from = *page.Next
	}
}

func (remoteLog) Subscribe(context.Context, uint64, func(eventstore.Envelope) error) error {
	return ErrReadOnly
}

func (remoteLog) Close() error { return nil }

// errNotFound is a 404 answer, which ReadStream turns into eventstore.ErrStreamNotFound.
var errNotFound = errors.New("not found")

// get decodes the JSON answer of GET path; any other status is an error carrying the
// problem's title (wrapping errNotFound for a 404).
func (r *Remote) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		var p problemBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &p) == nil && p.Title != "" {
			msg = p.Title
		}
		if res.StatusCode == http.StatusNotFound {
			return fmt.Errorf("GET %s: %s: %w", req.URL.Redacted(), msg, errNotFound)
		}
		return fmt.Errorf("GET %s: %s: %s", req.URL.Redacted(), res.Status, msg)
	}
	if err := json.NewDecoder(res.Body).Decode(into); err != nil {
		return fmt.Errorf("GET %s: %w", req.URL.Redacted(), err)
	}
	return nil
}
