// Package httpapi is the HTTP JSON transport of the order backend: the routes of the
// contract, bearer-token roles, RFC 9457 problems, idempotency keys, logs and metrics.
package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/projections"
)

// Headers the API reads and writes.
const (
	HeaderCorrelationID = "X-Correlation-ID"
	HeaderRequestID     = "X-Request-ID"
)

// Options configure a Server.
type Options struct {
	// Auth verifies bearer tokens. Required.
	Auth *tokens.Verifier
	// Logger receives one line per request. Default: none.
	Logger *zap.Logger
	// Registerer receives the HTTP metrics and Gatherer serves /metrics. When both are nil
	// the Server makes a registry of its own.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Ready answers /readyz with the state of each component; all ready means ready.
	Ready func(context.Context) []Check
	// Writable, when set, is asked before a command touches any store: an error (such as
	// one wrapping eventstore.ErrNoSpace) answers the command at once, as problemFor maps it.
	Writable func() error
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept. Default 24 h.
	IdempotencyTTL time.Duration
	// IdempotencyMax bounds the keys kept in memory. Default 100,000.
	IdempotencyMax int
	// IdempotencyKV keeps the answers durably, so that a retry after a restart still gets
	// the first answer (see NewIdempotencyBucket). Nil: in memory only.
	IdempotencyKV jetstream.KeyValue
	// WatchWrites, when set, derives a context that ends when the store stops writing
	// (embedded JetStream's Watch): a write to the idempotency bucket then gives up at once
	// rather than wait for an answer a full disk never gives.
	WatchWrites func(context.Context) (context.Context, context.CancelFunc)

	// Projections answers the read-model queries. Nil: those routes are not served.
	Projections *projections.Runner
	// ReadWait bounds how long a query with ?after=<position> waits for the read models
	// before it answers 503 with Retry-After. Default 3 s.
	ReadWait time.Duration
	// Clock is "now" of the queries (ages, days left). Default time.Now.
	Clock func() time.Time
	// CORSOrigins are the browser origins allowed to call the API (see cors.go), each
	// scheme://host[:port] as ParseOrigin gives it. None: no CORS headers.
	CORSOrigins []string
}

// Server is the HTTP API. Mount adds routes of other parts (projection queries, audit).
type Server struct {
	cmds    *command.Handler
	auth    *tokens.Verifier
	log     *zap.Logger
	ready   func(context.Context) []Check
	idem    *idempotency
	mux     *http.ServeMux
	routes  []Route
	metrics *httpMetrics
	handler http.Handler

	proj     *projections.Runner
	readWait time.Duration
	clock    func() time.Time
	writable func() error
}

// Route is one method and path pattern with the roles allowed on it (nil: public).
type Route struct {
	Method string
	Path   string // net/http pattern syntax: "/v1/orders/{id}"
	Roles  []tokens.Role
	// Name is the operation: the command's or query's name (OpenAPI operationId).
	Name string
}

// New builds the API over a command handler.
func New(cmds *command.Handler, opts Options) (*Server, error) {
	if opts.Auth == nil {
		return nil, errors.New("httpapi: no authenticator")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Registerer == nil && opts.Gatherer == nil {
		reg := prometheus.NewRegistry()
		opts.Registerer, opts.Gatherer = reg, reg
	}
	if opts.IdempotencyTTL == 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.IdempotencyMax == 0 {
		opts.IdempotencyMax = 100_000
	}
	if opts.ReadWait <= 0 {
		opts.ReadWait = 3 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	s := &Server{
		cmds: cmds, auth: opts.Auth, log: opts.Logger, ready: opts.Ready, writable: opts.Writable,
		idem: newIdempotency(opts.IdempotencyTTL, opts.IdempotencyMax, opts.IdempotencyKV, opts.Logger, opts.WatchWrites),
		mux:  http.NewServeMux(), metrics: newHTTPMetrics(opts.Registerer),
		proj: opts.Projections, readWait: opts.ReadWait, clock: opts.Clock,
	}
	s.routesOfTheContract(opts.Gatherer)
	if s.proj != nil {
		s.queryRoutes()
		s.listRoutes()
	}
	s.mux.HandleFunc("/", s.unmatched)
	s.handler = s.observe(cors(opts.CORSOrigins, s.mux))
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists the routes served, in the order they were added.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Mount serves h on rt.Method and rt.Path for the roles in rt.Roles (nil: public), with the
// same authentication, logs and metrics as the API's own routes. The handler finds its
// caller with PrincipalFrom and its correlation id with CorrelationID.
func (s *Server) Mount(rt Route, h http.Handler) {
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.Method+" "+rt.Path, s.authorize(rt, h))
}

// MountPages serves h under pattern outside the API's contract (the console's pages): with
// the same logs and metrics, but no bearer-token check (h checks its own callers), and not
// among Routes or in the OpenAPI document.
func (s *Server) MountPages(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) routesOfTheContract(gatherer prometheus.Gatherer) {
	var (
		reads    = []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator, tokens.RoleFinance, tokens.RoleAuditor}
		orderRds = []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator, tokens.RolePayments, tokens.RoleFinance, tokens.RoleAuditor}
		customer = []tokens.Role{tokens.RoleCustomer}
		operator = []tokens.Role{tokens.RoleOperator}
	)
	s.Mount(Route{"GET", "/healthz", nil, "health"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.Mount(Route{"GET", "/readyz", nil, "ready"}, http.HandlerFunc(s.readyz))
	s.Mount(Route{"GET", "/metrics", nil, "metrics"}, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	s.Mount(Route{"GET", "/v1/openapi.json", nil, "openapi"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI())
	}))

	s.command(Route{"POST", "/v1/subscriptions", operator, domain.OpenSubscription{}.CommandName()}, s.openSubscription)
	s.query(Route{"GET", "/v1/subscriptions/{id}", reads, "GetSubscription"}, s.getSubscription)
	s.command(Route{"POST", "/v1/subscriptions/{id}/usage", operator, domain.ReportUsage{}.CommandName()}, s.reportUsage)

	s.command(Route{"POST", "/v1/orders", customer, domain.RequestSpaceIncrease{}.CommandName()}, s.openOrder(requestSpaceOpening))
	s.query(Route{"GET", "/v1/orders/{id}", orderRds, "GetOrder"}, s.getOrder)
	s.command(Route{"POST", "/v1/orders/{id}/co-termination", customer, domain.ToggleCoTermination{}.CommandName()}, s.toggleCoTermination)
	s.command(Route{"POST", "/v1/orders/{id}/checkout", customer, domain.ProceedToCheckout{}.CommandName()}, s.proceedToCheckout)
	s.command(Route{"POST", "/v1/orders/{id}/payment-method", customer, domain.SelectPaymentMethod{}.CommandName()}, s.selectPaymentMethod)
	s.command(Route{"POST", "/v1/orders/{id}/modify", customer, domain.ModifyOrder{}.CommandName()}, s.modifyOrder)
	s.command(Route{"POST", "/v1/orders/{id}/confirm", customer, domain.ConfirmOrder{}.CommandName()}, s.confirmOrder)
	s.command(Route{"POST", "/v1/orders/{id}/cancel", []tokens.Role{tokens.RoleCustomer, tokens.RoleOperator}, domain.CancelOrder{}.CommandName()}, s.cancelOrder)
	s.command(Route{"POST", "/v1/orders/{id}/payments", []tokens.Role{tokens.RolePayments}, domain.RegisterPayment{}.CommandName()}, s.registerPayment)
}

// Check is one component's part of the answer of /readyz.
type Check struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	// Detail says why not, or how far along (e.g. "1,204 commits behind").
	Detail string `json:"detail,omitempty"`
}

// Readiness is the answer of /readyz: 200 when every component is ready, else 503, with
// every component's state either way so that an operator sees which one holds it back.
type Readiness struct {
	Status     string  `json:"status"` // "ready" or "not ready"
	Components []Check `json:"components"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := Readiness{Status: "ready", Components: []Check{}}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		rd.Components = s.ready(ctx)
	}
	var why []string
	for _, c := range rd.Components {
		if !c.Ready {
			why = append(why, c.Name+": "+c.Detail)
		}
	}
	if len(why) == 0 {
		writeJSON(w, http.StatusOK, rd)
		return
	}
	rd.Status = "not ready"
	s.logger(r).Debug("not ready", zap.Strings("components", why))
	writeJSON(w, http.StatusServiceUnavailable, rd)
}

// unmatched answers a path no route serves (404) or a method the path does not take (405).
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, r, problemFor(errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			"The method is not allowed here.", "allowed: "+strings.Join(allow, ", "))))
		return
	}
	writeProblem(w, r, problemFor(errorf(http.StatusNotFound, CodeNotFound, "No such resource.", r.URL.Path)))
}

// authorize checks the bearer token and the role before h runs.
func (s *Server) authorize(rt Route, h http.Handler) http.Handler {
	if rt.Roles == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			writeProblem(w, r, problemFor(err))
			return
		}
		if !slices.Contains(rt.Roles, p.Role) {
			writeProblem(w, r, problemFor(errorf(http.StatusForbidden, CodeForbidden,
				"Your role may not do this.", "role "+string(p.Role)+" may not "+rt.Name)))
			return
		}
		setActor(r.Context(), p.Subject)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (s *Server) authenticate(r *http.Request) (tokens.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return tokens.Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "A bearer token is required.",
			"send Authorization: Bearer <token>")
	}
	p, err := s.auth.Verify(strings.TrimSpace(token))
	if err != nil {
		return tokens.Principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "The bearer token is not valid.", err.Error())
	}
	return p, nil
}

// call is one request to a command or query handler.
type call struct {
	r       *http.Request
	w       http.ResponseWriter
	p       tokens.Principal
	body    []byte
	ifMatch *uint64
	meta    command.Meta
	// fresh: load the aggregate as the store has it now (a read given ?after=).
	fresh bool
}

func (c *call) ctx() context.Context { return c.r.Context() }

type serveFunc func(*call) (status int, answer any, err error)

func (s *Server) query(rt Route, serve serveFunc) {
	s.Mount(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		s.respond(w, r, &call{r: r, w: w, p: p}, serve)
	}))
}

// command mounts a command route: JSON body, If-Match and Idempotency-Key.
func (s *Server) command(rt Route, serve serveFunc) {
	s.Mount(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.newCall(w, r)
		if err != nil {
			writeProblem(w, r, problemFor(err))
			return
		}
		key := r.Header.Get(HeaderIdempotencyKey)
		if key == "" {
			s.respond(w, r, c, serve)
			return
		}
		s.respondOnce(w, r, c, key, serve)
	}))
}

// newCall reads what every command request carries: the caller, the body, If-Match. A
// store that cannot write refuses at once, before the body is read.
func (s *Server) newCall(w http.ResponseWriter, r *http.Request) (*call, error) {
	if s.writable != nil {
		if err := s.writable(); err != nil {
			return nil, err
		}
	}
	p, _ := PrincipalFrom(r.Context())
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	ifMatch, err := ParseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return nil, err
	}
	return &call{r: r, w: w, p: p, body: body, ifMatch: ifMatch, meta: command.Meta{
		CorrelationID: CorrelationID(r.Context()), CausationID: w.Header().Get(HeaderRequestID), Actor: p.Subject,
	}}, nil
}

// respondOnce runs a command sent with an Idempotency-Key: once, the same request again
// answering what the first answered, another request with the same key refused.
func (s *Server) respondOnce(w http.ResponseWriter, r *http.Request, c *call, key string, serve serveFunc) {
	if len(key) > 255 {
		writeProblem(w, r, problemFor(malformed("%s is longer than 255 characters", HeaderIdempotencyKey)))
		return
	}
	// A key belongs to its caller and its route: the same key on another order's confirm,
	// or from another customer, is another request.
	scope := []string{string(c.p.Role), c.p.Subject, r.Method + " " + r.URL.Path, key}
	c.meta.Key = command.IdempotencyKey(scope...)
	replay, mine, reused, err := s.idem.begin(r.Context(), strings.Join(scope, "\x00"), fingerprint(r, c.body))
	switch {
	case err != nil:
		writeProblem(w, r, problemFor(err))
	case reused:
		writeProblem(w, r, problemFor(errorf(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused,
			"The Idempotency-Key was used with another request.", "use a new key for a new request")))
	case replay != nil:
		replay.replay(w)
	default:
		rec := &recorder{ResponseWriter: w}
		c.w = rec
		finished := false
		defer func() { // a panic: forget the key, so that a retry runs again
			if !finished {
				_ = s.idem.finish(mine, &recorded{status: http.StatusInternalServerError})
			}
		}()
		s.respond(rec, r, c, serve)
		finished = true
		if err := s.idem.finish(mine, rec.result()); err != nil {
			// The command is done; only a retry after a restart would run it again.
			s.logger(r).Warn("idempotency key not kept durably", zap.Error(err))
		}
		rec.flush()
	}
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request, c *call, serve serveFunc) {
	status, answer, err := serve(c)
	if err != nil {
		p := problemFor(err)
		if p.Status >= 500 {
			s.logger(r).Error("request failed", zap.Error(err))
		}
		writeProblem(w, r, p)
		return
	}
	writeJSON(w, status, answer)
}

// pathID reads the {id} of the path; a malformed id names nothing, so it answers notFound.
func pathID(r *http.Request, notFound error) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, notFound
	}
	return id, nil
}

type principalKey struct{}

// PrincipalFrom returns the caller of a request that went through the Server's auth.
func PrincipalFrom(ctx context.Context) (tokens.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(tokens.Principal)
	return p, ok
}
