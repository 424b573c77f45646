package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// Lists for frontends and finance. Every list is paged the same way: ?limit= (default 100,
// at most 1000) and ?cursor= (a previous page's nextCursor); an answer that has more carries
// nextCursor, next (the same request for the next page) and a Link rel="next" header. A
// query parameter a list does not know is refused, so that a typo is not silently ignored.

// SubscriptionsList is the answer of GET /v1/subscriptions.
type SubscriptionsList struct {
	projections.SubscriptionsPage
	Next string `json:"next,omitempty"`
}

// OrdersList is the answer of GET /v1/orders.
type OrdersList struct {
	projections.OrdersPage
	Next string `json:"next,omitempty"`
}

// PendingList is the answer of GET /v1/pending-payments.
type PendingList struct {
	projections.PendingPage
	Next string `json:"next,omitempty"`
}

// CreditsList is one page of GET /v1/credits-due: its credits, the totals of all of them,
// and where the next page is.
type CreditsList struct {
	projections.CreditsDue
	NextCursor string `json:"nextCursor"`
	Next       string `json:"next,omitempty"`
}

// OrderStatuses are the values ?status= takes.
var OrderStatuses = []domain.OrderStatus{domain.StatusCart, domain.StatusCheckout, domain.StatusConfirmed,
	domain.StatusOverdue, domain.StatusPaid, domain.StatusCancelled, domain.StatusExpired, domain.StatusAbandoned}

func (s *Server) listRoutes() {
	var (
		subReaders   = []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator, tokens.RoleFinance, tokens.RoleAuditor}
		orderReaders = []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator, tokens.RolePayments, tokens.RoleFinance, tokens.RoleAuditor}
	)
	s.read(Route{"GET", "/v1/subscriptions", subReaders, "ListSubscriptions"}, []string{projections.ListsName}, s.listSubscriptions)
	s.read(Route{"GET", "/v1/orders", orderReaders, "ListOrders"}, []string{projections.ListsName}, s.listOrders)
}

// onlyParams refuses a query parameter the route does not take (after is every query's).
func onlyParams(q url.Values, allowed ...string) error {
	for name := range q {
		if name != "after" && !slices.Contains(allowed, name) {
			return malformed("unknown query parameter %q: this route takes %s", name, strings.Join(append(allowed, "after"), ", "))
		}
	}
	return nil
}

// pageLimit reads ?limit=: empty or 0 for the default, at most projections.MaxPageLimit.
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > projections.MaxPageLimit {
		return 0, malformed("limit=%q: want a whole number from 1 to %d", v, projections.MaxPageLimit)
	}
	return n, nil
}

func badCursor(q url.Values, err error) error {
	if errors.Is(err, projections.ErrBadCursor) {
		return malformed("cursor=%q is not one a previous page gave", q.Get("cursor"))
	}
	return err
}

// nextPage is the request for the page after this one ("" on the last page), and it sets
// the Link and X-Next-Cursor headers for clients that read the CSV.
func nextPage(c *call, cursor string) string {
	if cursor == "" {
		return ""
	}
	q := c.r.URL.Query()
	q.Set("cursor", cursor)
	q.Del("after") // the next page needs no wait: the first one had it
	next := c.r.URL.Path + "?" + q.Encode()
	c.w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next))
	c.w.Header().Set(HeaderNextCursor, cursor)
	return next
}

func (s *Server) listSubscriptions(c *call) (answer, error) {
	q := c.r.URL.Query()
	if err := onlyParams(q, "ownerId", "cursor", "limit"); err != nil {
		return answer{}, err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return answer{}, err
	}
	owner := q.Get("ownerId")
	page := projections.SubscriptionsPage{Subscriptions: []projections.SubscriptionSummary{}}
	switch {
	case c.p.Role == tokens.RoleCustomer && owner != "" && owner != c.p.Subject:
		// A customer sees its own subscriptions only: another owner's list is empty to it.
	default:
		if c.p.Role == tokens.RoleCustomer {
			owner = c.p.Subject
		}
		page, err = s.proj.Subscriptions(projections.SubscriptionsQuery{OwnerID: owner, Cursor: q.Get("cursor"), Limit: limit})
		if err != nil {
			return answer{}, badCursor(q, err)
		}
	}
	a := SubscriptionsList{SubscriptionsPage: page, Next: nextPage(c, page.NextCursor)}
	return answer{json: a, file: "subscriptions.csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, page.Subscriptions)
	}}, nil
}

func (s *Server) listOrders(c *call) (answer, error) {
	q := c.r.URL.Query()
	if err := onlyParams(q, "subscriptionId", "status", "cursor", "limit"); err != nil {
		return answer{}, err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return answer{}, err
	}
	oq := projections.OrdersQuery{Cursor: q.Get("cursor"), Limit: limit}
	if v := q.Get("subscriptionId"); v != "" {
		if oq.SubscriptionID, err = uuid.Parse(v); err != nil {
			return answer{}, malformed("subscriptionId=%q is not a uuid", v)
		}
	}
	if v := q.Get("status"); v != "" {
		oq.Status = domain.OrderStatus(v)
		if !slices.Contains(OrderStatuses, oq.Status) {
			return answer{}, malformed("status=%q: want one of %s", v, statusList())
		}
	}
	if c.p.Role == tokens.RoleCustomer {
		oq.OwnerID = c.p.Subject
	}
	page, err := s.proj.Orders(oq)
	if err != nil {
		return answer{}, badCursor(q, err)
	}
	a := OrdersList{OrdersPage: page, Next: nextPage(c, page.NextCursor)}
	return answer{json: a, file: "orders.csv", csv: func(w io.Writer) error {
		return projections.WriteCSV(w, page.Orders)
	}}, nil
}

func statusList() string {
	s := make([]string, len(OrderStatuses))
	for i, st := range OrderStatuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}
