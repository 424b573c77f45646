package console

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// pendingPageSize is how many orders one page of the pending list shows.
const pendingPageSize = 50

type pendingPage struct {
	Method    string
	MinAge    string
	Methods   []string
	Problem   string
	Summary   projections.PendingSummary
	Chart     chart
	Orders    []projections.PendingView
	NextHref  string
	FirstHref string
	CSVHref   string
	Credits   projections.CreditsDue
}

// pendingQuery reads the filters; a bad one is named and ignored.
func pendingQuery(r *http.Request) (projections.PendingQuery, url.Values, string) {
	q := r.URL.Query()
	pq := projections.PendingQuery{Method: q.Get("method"), Cursor: q.Get("cursor"), Limit: pendingPageSize}
	filters := url.Values{}
	if pq.Method != "" {
		filters.Set("method", pq.Method)
	}
	problem := ""
	if v := q.Get("minAgeDays"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problem = fmt.Sprintf("minAgeDays=%q", v)
		} else {
			pq.MinAgeDays = n
			filters.Set("minAgeDays", v)
		}
	}
	return pq, filters, problem
}

func (c *Console) pending(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	now := c.opts.Clock()
	pq, filters, problem := pendingQuery(r)
	page, err := c.opts.Projections.PendingPayments(pq, now)
	if errors.Is(err, projections.ErrBadCursor) {
		pq.Cursor, problem = "", "cursor"
		page, err = c.opts.Projections.PendingPayments(pq, now)
	}
	if err != nil {
		c.log.Error("console: pending payments", zap.Error(err))
		c.message(w, r, &p, http.StatusInternalServerError, "error")
		return
	}
	sum := c.opts.Projections.PendingSummary(now)
	l := lang(r)
	pg := pendingPage{
		Method: pq.Method, MinAge: filters.Get("minAgeDays"), Problem: problem, Summary: sum,
		Chart: newChart(l, sum), Orders: page.Orders,
		CSVHref:   Prefix + "pending.csv" + query(filters),
		FirstHref: Prefix + "pending" + query(filters),
	}
	methods := c.opts.Catalogue.MethodCodes()
	for _, m := range sum.ByMethod {
		if !slices.Contains(methods, m.Method) {
			methods = append(methods, m.Method)
		}
	}
	pg.Methods = methods
	if page.NextCursor != "" {
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("cursor", page.NextCursor)
		pg.NextHref = Prefix + "pending" + query(next)
	}
	if pq.Cursor == "" {
		pg.FirstHref = ""
	}
	pg.Credits = c.opts.Projections.CreditsDue(now)
	c.render(w, http.StatusOK, "pending", c.newView(r, &p, "pending.title", pg))
}

func query(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// pendingCSV downloads every pending order the filters select (not only one page).
func (c *Console) pendingCSV(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	now := c.opts.Clock()
	pq, _, _ := pendingQuery(r)
	pq.Cursor, pq.Limit = "", projections.MaxPageLimit
	var all []projections.PendingView
	for {
		page, err := c.opts.Projections.PendingPayments(pq, now)
		if err != nil {
			c.log.Error("console: pending payments CSV", zap.Error(err))
			http.Error(w, "the CSV could not be made", http.StatusInternalServerError)
			return
		}
		all = append(all, page.Orders...)
		if pq.Cursor = page.NextCursor; pq.Cursor == "" {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": "pending-payments-" + domain.DateOf(now).String() + ".csv"}))
	if err := projections.WriteCSV(w, all); err != nil {
		c.log.Warn("console: CSV cut short", zap.Error(err))
	}
}

type timelinePage struct {
	ID       string
	Problem  string
	Stream   string
	Rows     []timelineRow
	Intact   bool
	Break    string
	AsOf     uint64
	State    []field
	HasState bool
}

type timelineRow struct {
	Version     uint64
	Position    uint64
	RecordedAt  string
	Type        string
	Actor       string
	Channel     string
	Correlation string
	Linked      bool
	Selected    bool
	Href        string
}

type field struct{ Name, Value string }

func (c *Console) timeline(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	pg := timelinePage{ID: r.URL.Query().Get("id")}
	if pg.ID == "" {
		c.render(w, http.StatusOK, "timeline", c.newView(r, &p, "timeline.title", pg))
		return
	}
	ctx := r.Context()
	stream, err := audit.ResolveStream(ctx, c.opts.Store, pg.ID, "order", "subscription")
	var t audit.Timeline
	if err == nil {
		t, err = audit.History(ctx, c.opts.Store, stream)
	}
	if err != nil {
		if !errors.Is(err, eventstore.ErrStreamNotFound) {
			c.log.Info("console: timeline", zap.String("id", pg.ID), zap.Error(err))
		}
		pg.Problem = translate(lang(r), "timeline.unknown")
		c.render(w, http.StatusNotFound, "timeline", c.newView(r, &p, "timeline.title", pg))
		return
	}
	pg.Stream, pg.Intact = t.Stream, t.ChainIntact
	if t.Break != nil {
		pg.Break = t.Break.Error()
	}
	pg.AsOf = uint64(len(t.Entries)) - 1
	if v := r.URL.Query().Get("at"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil && n < uint64(len(t.Entries)) {
			pg.AsOf = n
		}
	}
	prev := ""
	for i, e := range t.Entries {
		pg.Rows = append(pg.Rows, timelineRow{
			Version: e.Version, Position: e.Position, RecordedAt: when(e.RecordedAt), Type: e.Type,
			Actor: e.Actor, Channel: e.Channel, Correlation: e.CorrelationID,
			Linked: e.PrevHash == prev && e.Version == uint64(i), Selected: uint64(i) == pg.AsOf,
			Href: Prefix + "timeline" + query(url.Values{"id": {pg.ID}, "at": {strconv.Itoa(i)}}) + "#state",
		})
		prev = e.Hash
	}
	pg.State, pg.HasState = c.stateAsOf(ctx, stream, pg.AsOf)
	c.render(w, http.StatusOK, "timeline", c.newView(r, &p, "timeline.title", pg))
}

// stateAsOf folds the stream's events up to version at with the domain's own evolve.
func (c *Console) stateAsOf(ctx context.Context, stream string, at uint64) ([]field, bool) {
	category, _, err := eventstore.ParseStream(stream)
	if err != nil {
		return nil, false
	}
	envs, err := c.opts.Store.ReadStream(ctx, stream, 0)
	if err != nil {
		return nil, false
	}
	codec := eventstore.DomainCodec()
	var order domain.Order
	var sub domain.Subscription
	for _, env := range envs {
		if env.StreamVersion > at {
			break
		}
		ev, err := codec.DecodeDomain(env)
		if err != nil {
			continue // an event this build cannot read changes nothing it can show
		}
		switch category {
		case "order":
			order = domain.EvolveOrder(order, ev)
		case "subscription":
			sub = domain.EvolveSubscription(sub, ev)
		}
	}
	switch category {
	case "order":
		return fields(order), true
	case "subscription":
		return fields(sub), true
	}
	return nil, false
}

// fields lists a state's exported fields in declaration order, each written for a person.
func fields(v any) []field {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	var out []field
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		out = append(out, field{Name: f.Name, Value: show(rv.Field(i).Interface())})
	}
	return out
}

func show(v any) string {
	switch x := v.(type) {
	case time.Time:
		return when(x)
	case fmt.Stringer:
		return x.String()
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint64:
		return fmt.Sprint(v)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the template escapes; "&" stays readable
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(b.String())
}

type modelsPage struct {
	Models     []projections.ModelStatus
	CanRebuild bool
	Rebuilt    string
}

func (c *Console) models(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	pg := modelsPage{
		Models: c.opts.Projections.Status(r.Context()), CanRebuild: slices.Contains(rebuilders, p.Role),
		Rebuilt: r.URL.Query().Get("rebuilt"),
	}
	c.render(w, http.StatusOK, "models", c.newView(r, &p, "models.title", pg))
}

func (c *Console) rebuild(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	name := r.PathValue("name")
	err := c.opts.Projections.Rebuild(r.Context(), name)
	if errors.Is(err, projections.ErrUnknownModel) {
		c.message(w, r, &p, http.StatusNotFound, "notFound")
		return
	}
	if err != nil {
		c.log.Error("console: rebuild", zap.String("model", name), zap.Error(err))
		c.message(w, r, &p, http.StatusInternalServerError, "error")
		return
	}
	c.log.Info("console: read model rebuilt", zap.String("model", name), zap.String("by", p.Subject))
	http.Redirect(w, r, Prefix+"models"+query(url.Values{"rebuilt": {name}}), http.StatusSeeOther)
}

type logPage struct {
	Head    uint64
	Ran     bool
	Report  audit.Report
	Tamper  string
	Failed  string
	Expect  string
	At      string
	Problem string
	// Checkpoints are the latest signed checkpoints, newest first; Keys how many public
	// keys the data folder vouches for; Signed what the verification made of them.
	Checkpoints []audit.Checkpoint
	Keys        int
	Signed      audit.CheckpointReport
	Damage      []string
}

// recentCheckpoints are the last signed checkpoints of each key, newest first.
const recentCheckpoints = 10

// checkpoints reads the last signed checkpoints of each key's stream, newest first.
func (c *Console) checkpoints(ctx context.Context, keys []ed25519.PublicKey) []audit.Checkpoint {
	var out []audit.Checkpoint
	for _, k := range keys {
		envs, err := c.opts.Store.ReadStream(ctx, checkpoint.StreamOf(audit.KeyID(k)), 0)
		if err != nil {
			if !errors.Is(err, eventstore.ErrStreamNotFound) {
				c.log.Warn("console: checkpoints", zap.Error(err))
			}
			continue
		}
		for _, env := range envs[max(len(envs)-recentCheckpoints, 0):] {
			if cp, err := audit.ParseCheckpoint(env); err == nil {
				out = append(out, cp)
			}
		}
	}
	slices.SortFunc(out, func(a, b audit.Checkpoint) int { return b.SignedAt.Compare(a.SignedAt) })
	return out[:min(len(out), recentCheckpoints)]
}

func (c *Console) logPage(w http.ResponseWriter, r *http.Request, p tokens.Principal) {
	q := r.URL.Query()
	pg := logPage{Expect: q.Get("expectDigest"), At: q.Get("at")}
	head, err := c.opts.Store.Head(r.Context())
	if err != nil {
		pg.Failed = "the log's head could not be read"
		c.log.Error("console: head", zap.Error(err))
	}
	pg.Head = head
	var keys []ed25519.PublicKey
	if c.opts.CheckpointKeys != nil {
		if keys, err = c.opts.CheckpointKeys(); err != nil {
			c.log.Warn("console: checkpoint keys", zap.Error(err))
		}
	}
	pg.Keys = len(keys)
	pg.Checkpoints = c.checkpoints(r.Context(), keys)
	if q.Get("verify") != "" && pg.Failed == "" {
		var exp *audit.Expect
		if pg.Expect != "" || pg.At != "" {
			at, err := strconv.ParseUint(pg.At, 10, 64)
			if err != nil || pg.Expect == "" {
				pg.Problem = "expectDigest + at"
			} else {
				exp = &audit.Expect{Position: at, Digest: pg.Expect}
			}
		}
		if pg.Problem == "" {
			ctx, cancel := context.WithTimeout(r.Context(), c.opts.VerifyTimeout)
			res, err := audit.CheckStore(ctx, c.opts.Store, audit.CheckOptions{Expect: exp, Keys: keys})
			cancel()
			switch {
			case err != nil:
				c.log.Error("console: verify", zap.Error(err))
				pg.Failed = "see the server log"
			default:
				pg.Ran, pg.Report, pg.Signed = true, res.Report, res.Checkpoints
				if res.Damage != nil {
					for _, g := range res.Damage.Gaps {
						pg.Damage = append(pg.Damage, g.String())
					}
				}
				if bad := res.Err(); bad != nil {
					pg.Tamper = bad.Error()
				}
			}
		}
	}
	c.render(w, http.StatusOK, "log", c.newView(r, &p, "log.title", pg))
}
