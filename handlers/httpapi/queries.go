package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// CodeNotCaughtUp: a query's ?after= position is not folded yet; retry after Retry-After.
const CodeNotCaughtUp = "projection-behind"

// HeaderNextCursor carries a CSV page's next cursor (the JSON answer has it in the body).
const HeaderNextCursor = "X-Next-Cursor"

// ProjectionsAnswer is the answer of GET /v1/projections.
type ProjectionsAnswer struct {
	Models []projections.ModelStatus `json:"models"`
}

// SubscriptionExpiries is the answer of GET /v1/subscriptions/{id}/expiries.
type SubscriptionExpiries struct {
	SubscriptionID uuid.UUID                `json:"subscriptionId"`
	Expiries       []projections.ExpiryView `json:"expiries"`
}

// ExpiriesWithin is the answer of GET /v1/expiries.
type ExpiriesWithin struct {
	WithinDays int                      `json:"withinDays"`
	Expiries   []projections.ExpiryView `json:"expiries"`
	NextCursor string                   `json:"nextCursor"`
	Next       string                   `json:"next,omitempty"`
}

// answer is what a read-model query gives: its JSON, and its CSV when it has one.
type answer struct {
	json any
	csv  func(io.Writer) error
	file string // the CSV's file name
}

type readFunc func(c *call) (answer, error)

// queryRoutes mounts the read-model queries; each waits for ?after= first (read-your-writes).
func (s *Server) queryRoutes() {
	var (
		subReaders = []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator, tokens.RoleFinance, tokens.RoleAuditor}
		staff      = []tokens.Role{tokens.RoleOperator, tokens.RoleFinance, tokens.RoleAuditor}
		finance    = []tokens.Role{tokens.RoleFinance, tokens.RoleAuditor}
	)
	s.read(Route{"GET", "/v1/subscriptions/{id}/quota", subReaders, "GetQuota"}, []string{projections.QuotaName}, s.getQuota)
	s.read(Route{"GET", "/v1/subscriptions/{id}/expiries", subReaders, "GetSubscriptionExpiries"}, []string{projections.ExpiryName}, s.getSubscriptionExpiries)
	s.read(Route{"GET", "/v1/expiries", staff, "ListExpiries"}, []string{projections.ExpiryName}, s.listExpiries)
	s.read(Route{"GET", "/v1/pending-payments", finance, "ListPendingPayments"}, []string{projections.PendingName}, s.listPending)
	s.read(Route{"GET", "/v1/pending-payments/summary", finance, "GetPendingSummary"}, []string{projections.PendingName}, s.pendingSummary)
	s.read(Route{"GET", "/v1/credits-due", finance, "ListCreditsDue"}, []string{projections.PendingName}, s.creditsDue)
	s.read(Route{"GET", "/v1/projections", staff, "GetProjections"}, nil, func(c *call) (answer, error) {
		return answer{json: ProjectionsAnswer{Models: s.proj.Status(c.ctx())}}, nil
	})
	s.Mount(Route{"POST", "/v1/projections/{name}/rebuild", []tokens.Role{tokens.RoleOperator}, "RebuildProjection"}, http.HandlerFunc(s.rebuild))
}

// read mounts a query on the named models (nil: all of them).
func (s *Server) read(rt Route, models []string, serve readFunc) {
	s.Mount(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		c := &call{r: r, w: w, p: p}
		if err := s.waitFor(r, models); err != nil {
			if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
				w.Header().Set("Retry-After", "1")
				writeProblem(w, r, problemFor(errorf(http.StatusServiceUnavailable, CodeNotCaughtUp,
					"The read model has not reached that position yet.",
					fmt.Sprintf("still folding up to position %s after %s; retry", r.URL.Query().Get("after"), s.readWait))))
				return
			}
			writeProblem(w, r, problemFor(err))
			return
		}
		a, err := serve(c)
		if err != nil {
			p := problemFor(err)
			if p.Status >= 500 {
				s.logger(r).Error("query failed", zap.Error(err))
			}
			writeProblem(w, r, p)
			return
		}
		if a.csv != nil && wantsCSV(r) {
			h := w.Header()
			h.Set("Content-Type", "text/csv; charset=utf-8")
			h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.file}))
			h.Set("Cache-Control", "no-store")
			h.Add("Vary", "Accept")
			w.WriteHeader(http.StatusOK)
			if err := a.csv(w); err != nil {
				s.logger(r).Warn("CSV answer cut short", zap.Error(err))
			}
			return
		}
		w.Header().Add("Vary", "Accept")
		writeJSON(w, http.StatusOK, a.json)
	}))
}

// waitFor holds a query with ?after=<position> until the models have folded that position,
// for at most the configured wait.
func (s *Server) waitFor(r *http.Request, models []string) error {
	v := r.URL.Query().Get("after")
	if v == "" {
		return nil
	}
	pos, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return malformed("after=%q is not a log position (a command's answer has it as \"position\")", v)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.readWait)
	defer cancel()
	return s.proj.WaitFor(ctx, pos, models...)
}

// freshAfter says whether a read of one aggregate (an order, a subscription) was given
// ?after=<position>: it is then answered from the store as it is now, which holds every
// position any replica has answered, instead of from this process's cache, which another
// replica's writes may have left behind.
func freshAfter(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("after")
	if v == "" {
		return false, nil
	}
	if _, err := strconv.ParseUint(v, 10, 64); err != nil {
		return false, malformed("after=%q is not a log position (a command's answer has it as \"position\")", v)
	}
	return true, nil
}

// wantsCSV: the client asked for text/csv (and not JSON before it).
func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv":
			return true
		case "application/json", "application/*", "*/*":
			return false
		}
	}
	return false
}

// visibleProjected finds the subscription of the path in the read models, hiding another
// customer's as unknown.
func (s *Server) visibleProjected(c *call) (uuid.UUID, error) {
	id, err := pathID(c.r, domain.ErrUnknownSubscription)
	if err != nil {
		return id, err
	}
	owner, ok := s.proj.Owner(id)
	if !ok || (c.p.Role == tokens.RoleCustomer && owner != c.p.Subject) {
		return id, domain.ErrUnknownSubscription
	}
	return id, nil
}

func (s *Server) getQuota(c *call) (answer, error) {
	id, err := s.visibleProjected(c)
	if err != nil {
		return answer{}, err
	}
	v, ok := s.proj.Quota(id, s.now())
	if !ok {
		return answer{}, domain.ErrUnknownSubscription
	}
	return answer{json: v, file: "quota-" + id.String() + ".csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, []projections.QuotaView{v})
	}}, nil
}

func (s *Server) getSubscriptionExpiries(c *call) (answer, error) {
	id, err := s.visibleProjected(c)
	if err != nil {
		return answer{}, err
	}
	v, ok := s.proj.SubscriptionExpiries(id, s.now())
	if !ok {
		return answer{}, domain.ErrUnknownSubscription
	}
	if v == nil {
		v = []projections.ExpiryView{}
	}
	return answer{json: SubscriptionExpiries{SubscriptionID: id, Expiries: v}, file: "expiries-" + id.String() + ".csv",
		csv: func(w io.Writer) error { return projections.WriteCSV(w, v) }}, nil
}

// MaxWithinDays bounds the window of GET /v1/expiries.
const MaxWithinDays = 3660

// ParseWithin reads an expiry window: "30d" or "30", 0..MaxWithinDays days.
func ParseWithin(v string) (int, error) {
	if v == "" {
		return projections.ExpiringDays, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
	if err != nil || n < 0 || n > MaxWithinDays {
		return 0, malformed("within=%q: want days such as 30d or 30, from 0 to %d", v, MaxWithinDays)
	}
	return n, nil
}

func (s *Server) listExpiries(c *call) (answer, error) {
	q := c.r.URL.Query()
	if err := onlyParams(q, "within", "cursor", "limit"); err != nil {
		return answer{}, err
	}
	days, err := ParseWithin(q.Get("within"))
	if err != nil {
		return answer{}, err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return answer{}, err
	}
	v, next, err := projections.PageExpiries(s.proj.ExpiringWithin(days, s.now()), q.Get("cursor"), limit)
	if err != nil {
		return answer{}, badCursor(q, err)
	}
	if v == nil {
		v = []projections.ExpiryView{}
	}
	a := ExpiriesWithin{WithinDays: days, Expiries: v, NextCursor: next, Next: nextPage(c, next)}
	return answer{json: a, file: fmt.Sprintf("expiries-within-%dd.csv", days),
		csv: func(w io.Writer) error { return projections.WriteCSV(w, v) }}, nil
}

func nonNegative(q map[string][]string, name string) (int, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 0 {
		return 0, malformed("%s=%q is not a whole number of 0 or more", name, vs[0])
	}
	return n, nil
}

func (s *Server) listPending(c *call) (answer, error) {
	q := c.r.URL.Query()
	if err := onlyParams(q, "method", "minAgeDays", "cursor", "limit"); err != nil {
		return answer{}, err
	}
	minAge, err := nonNegative(q, "minAgeDays")
	if err != nil {
		return answer{}, err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return answer{}, err
	}
	page, err := s.proj.PendingPayments(projections.PendingQuery{
		Method: q.Get("method"), MinAgeDays: minAge, Cursor: q.Get("cursor"), Limit: limit,
	}, s.now())
	if err != nil {
		return answer{}, badCursor(q, err)
	}
	a := PendingList{PendingPage: page, Next: nextPage(c, page.NextCursor)}
	return answer{json: a, file: "pending-payments-" + page.Today.String() + ".csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, page.Orders)
	}}, nil
}

// creditsDue lists the money owed back to customers, with totals by reason (JSON), or the
// list as CSV.
func (s *Server) creditsDue(c *call) (answer, error) {
	q := c.r.URL.Query()
	if err := onlyParams(q, "cursor", "limit"); err != nil {
		return answer{}, err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return answer{}, err
	}
	cd, cursor, err := s.proj.CreditsDue(s.now()).Page(q.Get("cursor"), limit)
	if err != nil {
		return answer{}, badCursor(q, err)
	}
	a := CreditsList{CreditsDue: cd, NextCursor: cursor, Next: nextPage(c, cursor)}
	return answer{json: a, file: "credits-due-" + cd.Today.String() + ".csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, cd.Credits)
	}}, nil
}

func (s *Server) pendingSummary(c *call) (answer, error) {
	if err := onlyParams(c.r.URL.Query()); err != nil {
		return answer{}, err
	}
	sum := s.proj.PendingSummary(s.now())
	return answer{json: sum, file: "pending-payments-summary-" + sum.Today.String() + ".csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, sum.Rows())
	}}, nil
}

// rebuild folds a read model again from zero and answers its status once it is swapped in.
func (s *Server) rebuild(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.proj.Rebuild(r.Context(), name)
	if errors.Is(err, projections.ErrUnknownModel) {
		writeProblem(w, r, problemFor(errorf(http.StatusNotFound, CodeNotFound, "No such read model.",
			fmt.Sprintf("%q: the models are %s", name, strings.Join(projections.ModelNames, ", ")))))
		return
	}
	if err != nil {
		s.logger(r).Error("rebuild failed", zap.String("model", name), zap.Error(err))
		writeProblem(w, r, problemFor(err))
		return
	}
	s.logger(r).Info("read model rebuilt", zap.String("model", name))
	for _, st := range s.proj.Status(r.Context()) {
		if st.Name == name {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}
