// Package command runs the domain's commands against the event store: load the aggregate
// (from a cache kept honest by expected versions), decide, append, retry on a conflict.
// It also holds the rules that span aggregates: the order slot, the purchase process
// manager and the sweeper of unpaid orders.
package command

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/eventstore"
)

// Stream categories.
const (
	SubscriptionCategory = "subscription"
	OrderCategory        = "order"
)

var (
	// ErrConflict: the aggregate kept changing under the command; the caller may try again.
	ErrConflict = errors.New("the order changed while the command ran: try again")
	// ErrPreconditionFailed: the caller's If-Match version is not the aggregate's version.
	ErrPreconditionFailed = errors.New("the version given is not the current one")
)

// Meta is who issued a command, from where, and as part of what.
type Meta struct {
	CorrelationID string
	CausationID   string
	Actor         string
	Channel       string
	// Key is the request's idempotency key (IdempotencyKey); zero for a command without
	// one. With a key, the ids the command creates are derived from it, and a command the
	// log shows done already is answered from the log instead of being decided again.
	Key uuid.UUID
}

// Result is where an accepted command's events landed.
type Result struct {
	// Version is the aggregate's version after the command.
	Version uint64 `json:"version"`
	// Position is the log position of the command's last event (for a payment that pays the
	// order, of the grant of its space to the subscription; or of the aggregate's last
	// event when the command had already taken effect): what a read-your-writes query waits for.
	Position uint64 `json:"position"`
	// Appended is false when the command had already taken effect and nothing was written.
	Appended bool `json:"-"`
	// Replayed is true when a keyed command was found done in the log by an earlier
	// attempt: the result, state and EventIDs are that attempt's.
	Replayed bool `json:"-"`
	// EventIDs are the ids of the events written, in order.
	EventIDs []uuid.UUID `json:"-"`
}

// Options tune a Handler.
type Options struct {
	Catalogue *domain.Catalogue
	Clock     func() time.Time
	Logger    *zap.Logger
	// Registerer receives the command metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// CacheSize bounds each aggregate cache (entries); 0 means 100,000.
	CacheSize int
	// MaxRetries bounds the reloads after a version conflict; 0 means 8.
	MaxRetries int
	// Shared says that other processes may write the same store (replicas of orderd, a
	// mailer of its own): a cached state is then checked against the stream's last version
	// before anything is decided or answered on it, so that no answer, refusal included,
	// comes from a state older than the stream.
	Shared bool
	// DeferGrants leaves the grant of a paid order's space to the Purchases process manager
	// alone, as after a crash between the payment and the grant (tests use it to make one).
	DeferGrants bool
}

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	store   eventstore.Store
	codec   *eventstore.Codec
	cat     *domain.Catalogue
	now     func() time.Time
	log     *zap.Logger
	retries int
	defer_  bool
	shared  bool
	metrics *metrics
	subs    *aggregate[domain.Subscription, domain.SubscriptionCommand]
	orders  *aggregate[domain.Order, domain.OrderCommand]
}

// New builds a Handler over a store.
func New(store eventstore.Store, opts Options) *Handler {
	if opts.Catalogue == nil {
		opts.Catalogue = domain.DefaultCatalogue()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 100_000
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 8
	}
	h := &Handler{
		store: store, codec: eventstore.DomainCodec(), cat: opts.Catalogue, now: opts.Clock,
		log: opts.Logger, retries: opts.MaxRetries, defer_: opts.DeferGrants, shared: opts.Shared, metrics: newMetrics(opts.Registerer),
	}
	h.subs = &aggregate[domain.Subscription, domain.SubscriptionCommand]{
		h: h, category: SubscriptionCategory, cache: newCache[domain.Subscription](opts.CacheSize),
		decide: domain.DecideSubscription, evolve: domain.EvolveSubscription,
	}
	h.orders = &aggregate[domain.Order, domain.OrderCommand]{
		h: h, category: OrderCategory, cache: newCache[domain.Order](opts.CacheSize),
		decide: domain.DecideOrder, evolve: domain.EvolveOrder,
	}
	return h
}

// Catalogue is the catalogue the handler prices with.
func (h *Handler) Catalogue() *domain.Catalogue { return h.cat }

// Subscription loads a subscription; ok is false when it does not exist.
func (h *Handler) Subscription(ctx context.Context, id uuid.UUID) (s domain.Subscription, version uint64, ok bool, err error) {
	e, err := h.subs.load(ctx, id, false)
	return e.state, e.ver, e.exists, err
}

// Order loads an order; ok is false when it does not exist.
func (h *Handler) Order(ctx context.Context, id uuid.UUID) (o domain.Order, version uint64, ok bool, err error) {
	e, err := h.orders.load(ctx, id, false)
	return e.state, e.ver, e.exists, err
}

// OrderNow loads an order as the store has it now, not as this process last saw it: for a
// check that another process's writes must not slip past (the mailer's "was it sent?").
func (h *Handler) OrderNow(ctx context.Context, id uuid.UUID) (o domain.Order, version uint64, ok bool, err error) {
	e, err := h.orders.load(ctx, id, true)
	return e.state, e.ver, e.exists, err
}

// SubscriptionNow loads a subscription as the store has it now (see OrderNow).
func (h *Handler) SubscriptionNow(ctx context.Context, id uuid.UUID) (s domain.Subscription, version uint64, ok bool, err error) {
	e, err := h.subs.load(ctx, id, true)
	return e.state, e.ver, e.exists, err
}

// ExecuteSubscription runs a command on a subscription. ifMatch, when not nil, is the
// version the caller saw: any other version answers ErrPreconditionFailed.
func (h *Handler) ExecuteSubscription(ctx context.Context, id uuid.UUID, cmd domain.SubscriptionCommand, meta Meta, ifMatch *uint64) (Result, domain.Subscription, error) {
	return h.subs.execute(ctx, id, cmd, meta, ifMatch)
}

// ExecuteOrder runs a command on an order. A command that opens an order goes through
// OpenOrder instead, which also reserves the subscription's order slot.
func (h *Handler) ExecuteOrder(ctx context.Context, id uuid.UUID, cmd domain.OrderCommand, meta Meta, ifMatch *uint64) (Result, domain.Order, error) {
	if _, ok := cmd.(domain.OrderOpener); ok {
		return Result{}, domain.Order{}, fmt.Errorf("command: %s opens an order: it must go through Handler.OpenOrder", cmd.CommandName())
	}
	res, o, err := h.orders.execute(ctx, id, cmd, meta, ifMatch)
	// A replayed payment grants too: the attempt that wrote it may have died before its grant.
	if _, paying := cmd.(domain.RegisterPayment); err == nil && paying && (res.Appended || res.Replayed) && o.Status == domain.StatusPaid && !h.defer_ {
		res = h.grantNow(ctx, o, res, meta)
	}
	var changed *domain.QuoteChangedError
	if errors.As(err, &changed) && changed.Repriced {
		return h.recordReprice(ctx, id, changed, meta)
	}
	return res, o, err
}

// recordReprice records the new quote of an order whose confirmation was refused because
// its quote is of another day, and answers the refusal with the quote recorded: the
// customer confirms that one, on this day, with its total. Nothing is confirmed.
func (h *Handler) recordReprice(ctx context.Context, id uuid.UUID, changed *domain.QuoteChangedError, meta Meta) (Result, domain.Order, error) {
	res, o, err := h.orders.execute(ctx, id, domain.RepriceOrder{}, meta, nil)
	if err != nil {
		return Result{}, o, err
	}
	return res, o, &domain.QuoteChangedError{Quote: o.Quote, Repriced: true}
}

// grantNow applies a just-paid order to its subscription at once, so that the payment's
// answer already covers the grant: a read-your-writes query after it sees the space. The
// Purchases process manager applies it from the log in any case (a crash here loses
// nothing), and the subscription refuses a second application of the same order.
func (h *Handler) grantNow(ctx context.Context, o domain.Order, paid Result, meta Meta) Result {
	// The same command the process manager derives from OrderPaid: whichever runs second
	// is a no-op.
	apply := domain.ApplyPurchase{OrderID: o.ID, Quote: o.Quote, PaidAt: o.PaidAt}
	// Caused by OrderPaid, the payment's last event, as when the process manager applies it.
	meta.CausationID = paid.EventIDs[len(paid.EventIDs)-1].String()
	granted, _, err := h.subs.execute(ctx, o.SubscriptionID, apply, meta, nil)
	if err != nil {
		h.log.Warn("grant at payment; the process manager will apply it", zap.Stringer("order", o.ID),
			zap.String("correlation_id", meta.CorrelationID), zap.Error(err))
		return paid
	}
	if granted.Position > paid.Position {
		paid.Position = granted.Position
	}
	return paid
}

// aggregate is the load-decide-append loop of one kind of aggregate.
type aggregate[S any, C domain.Command] struct {
	h        *Handler
	category string
	cache    *cache[S]
	decide   func(*domain.Catalogue, S, C, time.Time) ([]domain.Event, error)
	evolve   func(S, domain.Event) S
}

func (a *aggregate[S, C]) stream(id uuid.UUID) string { return eventstore.StreamName(a.category, id) }

// load returns the aggregate's state: from the cache unless fresh is set, else from the
// stream (catching up from a cached version when there is one).
func (a *aggregate[S, C]) load(ctx context.Context, id uuid.UUID, fresh bool) (cached[S], error) {
	e, _, err := a.loadFind(ctx, id, fresh, false, uuid.Nil)
	return e, err
}

// done is a keyed command found in the log: the state right after its commit, and the
// commit's result.
type done[S any] struct {
	state S
	res   Result
}

// loadFind is load that also looks for the event marker among the events it reads (all of
// the stream's when whole is set, else those past the cached version). When it is there,
// done holds the state as of the end of the commit that holds it.
func (a *aggregate[S, C]) loadFind(ctx context.Context, id uuid.UUID, fresh, whole bool, marker uuid.UUID) (cached[S], *done[S], error) {
	stream := a.stream(id)
	e, hit := a.cache.get(stream)
	if hit && !fresh && !whole {
		current, err := a.current(ctx, e)
		if err != nil {
			return e, nil, fmt.Errorf("load %s: %w", stream, err)
		}
		if current {
			return e, nil, nil
		}
	}
	if !hit || whole {
		e = cached[S]{stream: stream}
	}
	from := uint64(0)
	if e.exists {
		from = e.ver + 1
	}
	envs, err := a.h.store.ReadStream(ctx, stream, from)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		if e.exists { // the cache saw events the store does not have: trust the store
			a.cache.drop(stream)
			return cached[S]{stream: stream}, nil, nil
		}
		if whole {
			a.cache.drop(stream)
		}
		return e, nil, nil
	case err != nil:
		return e, nil, fmt.Errorf("load %s: %w", stream, err)
	}
	var found *done[S]
	commit := uint64(0) // position of the marker's commit while its events are folded
	for _, env := range envs {
		ev, err := a.h.codec.DecodeDomain(env)
		if err != nil {
			return e, nil, fmt.Errorf("load %s at version %d: %w", stream, env.StreamVersion, err)
		}
		e.state = a.evolve(e.state, ev)
		e.exists, e.ver, e.pos, e.hash = true, env.StreamVersion, env.Position, eventstore.HashEnvelope(env)
		if marker != uuid.Nil && env.ID == marker && found == nil {
			found, commit = &done[S]{}, env.Position
		}
		if found != nil && commit != 0 && env.Position == commit {
			found.res.EventIDs = append(found.res.EventIDs, env.ID)
			if env.LastInCommit() {
				found.state = e.state
				found.res.Version, found.res.Position, found.res.Replayed = e.ver, e.pos, true
				commit = 0
			}
		}
	}
	a.cache.put(e)
	return e, found, nil
}

// lastVersions is what a store offers to check a cached state at the cost of one small
// request (the JetStream store: the last message of the stream's subject).
type lastVersions interface {
	LastVersion(ctx context.Context, stream string) (version, position uint64, exists bool, err error)
}

// current says whether the cached state e may be trusted: always when this process is the
// store's only writer, else when the stream's last version is still e's. A store that
// cannot say cheaply has e caught up from its version instead (current false).
func (a *aggregate[S, C]) current(ctx context.Context, e cached[S]) (bool, error) {
	if !a.h.shared {
		return true, nil
	}
	lv, ok := a.h.store.(lastVersions)
	if !ok {
		return false, nil
	}
	ver, _, exists, err := lv.LastVersion(ctx, e.stream)
	if err != nil {
		return false, err
	}
	current := exists == e.exists && (!exists || ver == e.ver)
	outcome := "stale"
	if current {
		outcome = "current"
	}
	a.h.metrics.checks.WithLabelValues(a.category, outcome).Inc()
	return current, nil
}

func (a *aggregate[S, C]) execute(ctx context.Context, id uuid.UUID, cmd C, meta Meta, ifMatch *uint64) (Result, S, error) {
	start := time.Now()
	res, state, err := a.run(ctx, id, cmd, meta, ifMatch)
	a.h.metrics.observe(cmd.CommandName(), err, time.Since(start))
	return res, state, err
}

func (a *aggregate[S, C]) run(ctx context.Context, id uuid.UUID, cmd C, meta Meta, ifMatch *uint64) (Result, S, error) {
	fresh := false
	step, marker := stepOf(cmd), uuid.Nil
	if meta.Key != uuid.Nil {
		// The first event this command would append: if the log has it, an earlier attempt
		// (before a crash, or on another replica) did the command, and its answer is rebuilt
		// from the log. The whole stream is read once; later reloads look at new events.
		marker = eventID(meta.Key, a.stream(id), step, 0)
	}
	for attempt := 0; ; attempt++ {
		e, found, err := a.loadFind(ctx, id, fresh, marker != uuid.Nil && attempt == 0, marker)
		if err != nil {
			return Result{}, e.state, err
		}
		if found != nil {
			return found.res, found.state, nil
		}
		if ifMatch != nil && (!e.exists || e.ver != *ifMatch) {
			if !fresh { // the cache may be behind the caller: look again before refusing
				fresh = true
				attempt--
				continue
			}
			return Result{}, e.state, fmt.Errorf("%w: current version %d", ErrPreconditionFailed, e.ver)
		}
		now := a.h.now()
		events, err := a.decide(a.h.cat, e.state, cmd, now)
		if de, ok := domain.AsError(err); ok && de.Kind != domain.Invalid && !fresh {
			// Another process may have moved the aggregate on since it was cached: a refusal
			// for its state is only given on the state as the store has it.
			fresh = true
			attempt--
			continue
		}
		if err != nil {
			return Result{}, e.state, err
		}
		if len(events) == 0 {
			return Result{Version: e.ver, Position: e.pos}, e.state, nil
		}
		res, next, err := a.append(ctx, e, events, meta, now, step)
		if err == nil {
			return res, next.state, nil
		}
		var wrong *eventstore.WrongVersionError
		if !errors.As(err, &wrong) {
			return Result{}, e.state, err
		}
		a.h.metrics.conflicts.WithLabelValues(a.category).Inc()
		if ifMatch != nil {
			return Result{}, e.state, fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
		}
		if attempt >= a.h.retries {
			return Result{}, e.state, fmt.Errorf("%w (%d attempts): %v", ErrConflict, attempt+1, err)
		}
		a.h.metrics.retries.WithLabelValues(a.category).Inc()
		fresh = true
		// Jitter spreads the losers of a race so they do not collide again in step.
		select {
		case <-time.After(time.Duration(rand.IntN(1+attempt*2)+1) * time.Millisecond):
		case <-ctx.Done():
			return Result{}, e.state, ctx.Err()
		}
	}
}

// append writes the events decided on state e, chaining each to the one before. A keyed
// command's event ids are derived from its key and step, so that a retry writes the same.
func (a *aggregate[S, C]) append(ctx context.Context, e cached[S], events []domain.Event, meta Meta, now time.Time, step string) (Result, cached[S], error) {
	expected := eventstore.NoStream
	next := e.ver + 1
	if e.exists {
		expected = eventstore.Exact(e.ver)
	} else {
		next = 0
	}
	data := make([]eventstore.EventData, len(events))
	prev := e.hash
	for i, ev := range events {
		md := eventstore.Metadata{
			CorrelationID: meta.CorrelationID, CausationID: meta.CausationID, Actor: meta.Actor,
			Channel: meta.Channel, PrevHash: prev, OccurredAt: now.UTC(),
		}
		id := uuid.New()
		if meta.Key != uuid.Nil {
			id = eventID(meta.Key, e.stream, step, i)
		}
		d, err := a.h.codec.Encode(id, ev, md)
		if err != nil {
			return Result{}, e, err
		}
		data[i] = d
		prev = eventstore.Hash(e.stream, next+uint64(i), d)
	}
	res, err := a.h.store.Append(ctx, e.stream, expected, data...)
	if err != nil {
		if eventstore.IsWrongVersion(err) {
			a.cache.drop(e.stream)
		}
		return Result{}, e, err
	}
	for _, ev := range events {
		e.state = a.evolve(e.state, ev)
	}
	e.exists, e.ver, e.pos, e.hash = true, res.Version, res.Position, prev
	a.cache.put(e)
	ids := make([]uuid.UUID, len(data))
	for i, d := range data {
		ids[i] = d.ID
	}
	return Result{Version: res.Version, Position: res.Position, Appended: true, EventIDs: ids}, e, nil
}
