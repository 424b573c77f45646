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
// check that no write may slip past (the mailer's "is it still due? was it sent?"). The
// cache is not enough even for the store's only writer: a follower acting on a commit (the
// mailer, on the relay's notification of it) can run before the command that appended it
// has put the new state in the cache, and saw a confirmed order still at checkout.
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
	return h.UpdateOrder(ctx, id, meta, ifMatch, func(domain.Order, *Meta) (domain.OrderCommand, error) { return cmd, nil })
}

// UpdateOrder runs on an order the command that cmdOf makes of the order's current state,
// with one load of the order for both: cmdOf sees the very state the command is decided
// on. Its error (the caller may not act on this order, the request makes no command) is
// answered as is, before anything is decided, and changes nothing. cmdOf may set the
// fields of meta that depend on the order (the channel its events carry). It runs again,
// on the new state, when the order changed under the command (a version conflict).
func (h *Handler) UpdateOrder(ctx context.Context, id uuid.UUID, meta Meta, ifMatch *uint64, cmdOf func(o domain.Order, meta *Meta) (domain.OrderCommand, error)) (Result, domain.Order, error) {
	res, o, cmd, meta, err := h.orders.update(ctx, id, meta, ifMatch, func(o domain.Order, meta *Meta) (domain.OrderCommand, error) {
		cmd, err := cmdOf(o, meta)
		switch {
		case err != nil:
			return nil, err
		case cmd == nil:
			return nil, errors.New("command: no command to run on the order")
		}
		if _, ok := cmd.(domain.OrderOpener); ok {
			return nil, fmt.Errorf("command: %s opens an order: it must go through Handler.OpenOrder", cmd.CommandName())
		}
		return cmd, nil
	})
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
	e, _, _, err := a.loadRead(ctx, id, fresh, false)
	return e, err
}

// done is a keyed command found in the log: the state right after its commit, and the
// commit's result.
type done[S any] struct {
	state S
	res   Result
}

// reading is what a load read from the stream: its events (decoded beside them), folded
// onto base.
type reading[S any] struct {
	base   S
	envs   []eventstore.Envelope
	events []domain.Event
}

// loadRead is load that also answers the events it read (all of the stream's when whole is
// set), and whether the state is the store's as of now: read from the stream, or checked
// against its last version, rather than trusted from the cache.
func (a *aggregate[S, C]) loadRead(ctx context.Context, id uuid.UUID, fresh, whole bool) (e cached[S], r reading[S], now bool, err error) {
	stream := a.stream(id)
	e, hit := a.cache.get(stream)
	if hit && !fresh && !whole {
		current, checked, err := a.current(ctx, e)
		if err != nil {
			return e, r, false, fmt.Errorf("load %s: %w", stream, err)
		}
		if current {
			return e, reading[S]{base: e.state}, checked, nil
		}
	}
	if !hit || whole {
		e = cached[S]{stream: stream}
	}
	r.base = e.state
	from := uint64(0)
	if e.exists {
		from = e.ver + 1
	}
	envs, err := a.h.store.ReadStream(ctx, stream, from)
	switch {
	case errors.Is(err, eventstore.ErrStreamNotFound):
		if e.exists { // the cache saw events the store does not have: trust the store
			a.cache.drop(stream)
			return cached[S]{stream: stream}, reading[S]{}, true, nil
		}
		if whole {
			a.cache.drop(stream)
		}
		return e, r, true, nil
	case err != nil:
		return e, r, false, fmt.Errorf("load %s: %w", stream, err)
	}
	r.envs, r.events = envs, make([]domain.Event, 0, len(envs))
	for _, env := range envs {
		ev, err := a.h.codec.DecodeDomain(env)
		if err != nil {
			return e, r, false, fmt.Errorf("load %s at version %d: %w", stream, env.StreamVersion, err)
		}
		e.state = a.evolve(e.state, ev)
		e.exists, e.ver, e.pos, e.hash = true, env.StreamVersion, env.Position, eventstore.HashEnvelope(env)
		r.events = append(r.events, ev)
	}
	a.cache.put(e)
	return e, r, true, nil
}

// find looks for the event marker among the events r read: when it is there, done holds
// the state as of the end of the commit that holds it, and that commit's result.
func (a *aggregate[S, C]) find(r reading[S], marker uuid.UUID) *done[S] {
	if marker == uuid.Nil {
		return nil
	}
	state := r.base
	var found *done[S]
	commit := uint64(0) // position of the marker's commit while its events are folded
	for i, env := range r.envs {
		state = a.evolve(state, r.events[i])
		if env.ID == marker && found == nil {
			found, commit = &done[S]{}, env.Position
		}
		if found != nil && commit != 0 && env.Position == commit {
			found.res.EventIDs = append(found.res.EventIDs, env.ID)
			if env.LastInCommit() {
				found.state = state
				found.res.Version, found.res.Position, found.res.Replayed = env.StreamVersion, env.Position, true
				commit = 0
			}
		}
	}
	return found
}

// lastVersions is what a store offers to check a cached state at the cost of one small
// request (the JetStream store: the last message of the stream's subject).
type lastVersions interface {
	LastVersion(ctx context.Context, stream string) (version, position uint64, exists bool, err error)
}

// current says whether the cached state e may be trusted: always when this process is the
// store's only writer, else when the stream's last version is still e's (checked true: it
// was asked of the store). A store that cannot say cheaply has e caught up from its
// version instead (current false).
func (a *aggregate[S, C]) current(ctx context.Context, e cached[S]) (current, checked bool, err error) {
	if !a.h.shared {
		return true, false, nil
	}
	lv, ok := a.h.store.(lastVersions)
	if !ok {
		return false, false, nil
	}
	ver, _, exists, err := lv.LastVersion(ctx, e.stream)
	if err != nil {
		return false, false, err
	}
	current = exists == e.exists && (!exists || ver == e.ver)
	outcome := "stale"
	if current {
		outcome = "current"
	}
	a.h.metrics.checks.WithLabelValues(a.category, outcome).Inc()
	return current, true, nil
}

// commandOf makes the command to run of the aggregate's current state (see UpdateOrder).
type commandOf[S any, C domain.Command] func(state S, meta *Meta) (C, error)

// fixed is the commandOf of a command known before the aggregate is loaded.
func fixed[S any, C domain.Command](cmd C) commandOf[S, C] {
	return func(S, *Meta) (C, error) { return cmd, nil }
}

func (a *aggregate[S, C]) execute(ctx context.Context, id uuid.UUID, cmd C, meta Meta, ifMatch *uint64) (Result, S, error) {
	res, state, _, _, err := a.update(ctx, id, meta, ifMatch, fixed[S](cmd))
	return res, state, err
}

// update is run, observed as a command once there is one: a refusal by commandOf (the
// caller may not act on the aggregate) is the caller's, not a command's.
func (a *aggregate[S, C]) update(ctx context.Context, id uuid.UUID, meta Meta, ifMatch *uint64, cmdOf commandOf[S, C]) (Result, S, C, Meta, error) {
	start := time.Now()
	res, state, cmd, meta, err := a.run(ctx, id, meta, ifMatch, cmdOf)
	if any(cmd) != nil {
		a.h.metrics.observe(cmd.CommandName(), err, time.Since(start))
	}
	return res, state, cmd, meta, err
}

// run loads the aggregate, makes the command of its state with cmdOf, decides, appends,
// and on a version conflict does it all again on the new state. It answers the command
// made last (nil when cmdOf refused at once) and the meta it ran with.
func (a *aggregate[S, C]) run(ctx context.Context, id uuid.UUID, meta Meta, ifMatch *uint64, cmdOf commandOf[S, C]) (Result, S, C, Meta, error) {
	fresh := false
	keyed := meta.Key != uuid.Nil
	var cmd C
	m := meta
	for attempt := 0; ; attempt++ {
		// A keyed command reads the whole stream once, to find the events of an earlier
		// attempt (below); later reloads look at new events.
		e, read, now, err := a.loadRead(ctx, id, fresh, keyed && attempt == 0)
		if err != nil {
			return Result{}, e.state, cmd, m, err
		}
		m = meta
		c, err := cmdOf(e.state, &m)
		if err != nil {
			return Result{}, e.state, cmd, m, err
		}
		cmd = c
		step := stepOf(cmd)
		if keyed {
			// The first event this command would append: if the log has it, an earlier
			// attempt (before a crash, or on another replica) did the command, and its
			// answer is rebuilt from the log.
			if found := a.find(read, eventID(meta.Key, a.stream(id), step, 0)); found != nil {
				return found.res, found.state, cmd, m, nil
			}
		}
		if ifMatch != nil && (!e.exists || e.ver != *ifMatch) {
			if !fresh && !now { // the cache may be behind the caller: look again before refusing
				fresh = true
				attempt--
				continue
			}
			return Result{}, e.state, cmd, m, fmt.Errorf("%w: current version %d", ErrPreconditionFailed, e.ver)
		}
		at := a.h.now()
		events, err := a.decide(a.h.cat, e.state, cmd, at)
		if de, ok := domain.AsError(err); ok && de.Kind != domain.Invalid && !fresh && !now {
			// Another process may have moved the aggregate on since it was cached: a refusal
			// for its state is only given on the state as the store has it.
			fresh = true
			attempt--
			continue
		}
		if err != nil {
			return Result{}, e.state, cmd, m, err
		}
		if len(events) == 0 {
			return Result{Version: e.ver, Position: e.pos}, e.state, cmd, m, nil
		}
		res, next, err := a.append(ctx, e, events, m, at, step)
		if err == nil {
			return res, next.state, cmd, m, nil
		}
		if err := a.retryAfter(ctx, err, ifMatch != nil, attempt); err != nil {
			return Result{}, e.state, cmd, m, err
		}
		fresh = true
	}
}

// retryAfter answers nil when a command whose append failed with err may try again, after
// a short jittered wait: another writer got there first, the command has no If-Match to
// honour, and attempts remain. Otherwise it answers the error to return.
func (a *aggregate[S, C]) retryAfter(ctx context.Context, err error, ifMatch bool, attempt int) error {
	var wrong *eventstore.WrongVersionError
	if !errors.As(err, &wrong) {
		return err
	}
	a.h.metrics.conflicts.WithLabelValues(a.category).Inc()
	if ifMatch {
		return fmt.Errorf("%w: %v", ErrPreconditionFailed, err)
	}
	if attempt >= a.h.retries {
		return fmt.Errorf("%w (%d attempts): %v", ErrConflict, attempt+1, err)
	}
	a.h.metrics.retries.WithLabelValues(a.category).Inc()
	// Jitter spreads the losers of a race so they do not collide again in step.
	select {
	case <-time.After(time.Duration(rand.IntN(1+attempt*2)+1) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// append writes the events decided on state e, chaining each to the one before. A keyed
// command's event ids are derived from its key and step, so that a retry writes the same.
// The expected version names the commit e was built from (ExactAt): this cache is the only
// one of versions, and the store needs no read to check the append.
func (a *aggregate[S, C]) append(ctx context.Context, e cached[S], events []domain.Event, meta Meta, now time.Time, step string) (Result, cached[S], error) {
	expected := eventstore.NoStream
	next := e.ver + 1
	if e.exists {
		expected = eventstore.ExactAt(e.ver, e.pos)
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
