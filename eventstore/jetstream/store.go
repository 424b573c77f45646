// Package jetstream is the default event store: eventstore.Store on a NATS JetStream
// stream, embedded in the process or on an external server or cluster.
package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/eventstore"
)

// Options configures a Store. The zero value is the product's default.
type Options struct {
	// Stream is the JetStream stream's name. Default "EVENTS".
	Stream string
	// SubjectPrefix is the first subject token; the stream holds "<prefix>.>". Default
	// "events". Two stores on one server need different Stream and SubjectPrefix.
	SubjectPrefix string
	// Replicas of the stream on a cluster: an existing stream with another number is
	// changed to it. 0: as the stream has it (a tool that reads or imports must not
	// change a deployment's setting), 1 when it is created.
	Replicas int
	// Timeout bounds a call whose context has no deadline, so that an unreachable server
	// never blocks a caller forever. Default 5 s. Subscribe is not bounded.
	Timeout time.Duration
	// Logger for the start-up report. Default: no logging.
	Logger *zap.Logger
	// Faults, when set, tells Append at once that the server cannot write (see Faults):
	// the embedded server's *Embedded. Nil: a failed write is known when the publish
	// times out or the server answers.
	Faults Faults
	// SkipSyncReport leaves out the report of the server's fsync setting, for a caller that
	// knows it already (the embedded server reports its own, and its in-process connection
	// cannot ask).
	SkipSyncReport bool
}

// Store is an eventstore.Store on one JetStream stream. Each commit is one message on the
// subject "<prefix>.<category>.<uuid>", whose stream sequence is the commit's Position.
type Store struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	prefix  string
	timeout time.Duration
	log     *zap.Logger
	// directGet is "$JS.API.DIRECT.GET.<stream>".
	directGet string
	// flush fsyncs the stream for groups of appends on an embedded server (nil elsewhere:
	// an external server is told to fsync every write itself).
	flush  *flusher
	faults Faults
	// leaderReads: the stream is replicated, and a direct get may be answered by a
	// follower a little behind the leader, so what must be current (a stream's last
	// commit) is asked of the leader.
	leaderReads bool
}

var _ eventstore.Store = (*Store)(nil)

// Connect connects to a NATS server or cluster (comma-separated URLs) within ctx.
func Connect(ctx context.Context, url string, opts ...nats.Option) (*nats.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(dl), time.Millisecond)))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("jetstream: connect %s: %w", url, r.err)
		}
		// With nats.RetryOnFailedConnect, Connect answers before it is connected: wait,
		// within ctx, so that the caller gets a usable connection or an error.
		for !r.nc.IsConnected() {
			select {
			case <-ctx.Done():
				r.nc.Close()
				return nil, fmt.Errorf("jetstream: connect %s: %w", url, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
			if r.nc.IsClosed() {
				return nil, fmt.Errorf("jetstream: connect %s: %w", url, nats.ErrConnectionClosed)
			}
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("jetstream: connect %s: %w", url, ctx.Err())
	}
}

// Open creates or updates the events stream on nc's server and returns a Store on it.
// The Store does not own nc: closing the Store leaves nc open.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Store, error) {
	opts.defaults()
	s := &Store{
		nc:        nc,
		name:      opts.Stream,
		prefix:    opts.SubjectPrefix,
		timeout:   opts.Timeout,
		log:       opts.Logger,
		directGet: "$JS.API.DIRECT.GET." + opts.Stream,
		faults:    opts.Faults,
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: open %s: %w", opts.Stream, err)
	}
	s.js = js
	if opts.Replicas == 0 {
		opts.Replicas = 1
		ictx, cancel := s.bound(ctx)
		if st, err := js.Stream(ictx, opts.Stream); err == nil {
			opts.Replicas = max(st.CachedInfo().Config.Replicas, 1)
		}
		cancel()
	}
	s.leaderReads = opts.Replicas > 1
	// Other replicas may be creating the stream at this moment, or the cluster electing
	// its leader: Ensure waits and retries, within ctx's deadline or its own bound.
	err = Ensure(ctx, "jetstream: stream "+opts.Stream, opts.Replicas, func(ctx context.Context) error {
		var err error
		s.stream, err = js.CreateOrUpdateStream(ctx, opts.streamConfig())
		return err
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if e := embeddedOf(nc); e != nil && e.groupCommit && opts.Replicas == 1 {
		if err := s.groupCommit(ctx, e); err != nil {
			return nil, fmt.Errorf("jetstream: open %s: %w", opts.Stream, err)
		}
	}
	if !opts.SkipSyncReport {
		s.reportSync(ctx)
	}
	return s, nil
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = "EVENTS"
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "events"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// streamConfig is the events stream's: one message per commit, kept for ever.
func (o *Options) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "event log: one message per commit, one subject per event stream",
		Subjects:    []string{o.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		// ReadStream and ReadAll use direct gets, much faster than a consumer per read.
		AllowDirect: true,
		// An event log is append-only: the server refuses to delete or purge messages.
		DenyDelete: true,
		DenyPurge:  true,
	}
}

// groupCommit makes appends on the embedded server e durable by fsyncing the stream's
// files once per group of appends (groupcommit.go), from the stream's last sequence on.
func (s *Store) groupCommit(ctx context.Context, e *Embedded) error {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return err
	}
	js := e.Server.JetStreamConfig()
	if js == nil {
		return errors.New("the embedded server runs without JetStream")
	}
	s.flush, err = newFlusher(js.StoreDir, globalAccount, s.name, info.State.LastSeq, e.restarts.Load)
	return err
}

// globalAccount is where an embedded server without accounts keeps its streams.
const globalAccount = "$G"

// Fsyncs counts the group commits done so far (0 where the server fsyncs by itself).
func (s *Store) Fsyncs() uint64 {
	if s.flush == nil {
		return 0
	}
	return s.flush.fsyncs.Load()
}

// reportSync logs whether the server fsyncs each write, when the connection may see it
// (the system account answers VARZ; an ordinary account gets "no responders" at once).
func (s *Store) reportSync(ctx context.Context) {
	if s.flush != nil {
		s.log.Info("event store opened; appends are fsynced in groups before they are answered",
			zap.String("stream", s.name))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, "$SYS.REQ.SERVER.PING.VARZ", nil)
	if err != nil {
		s.log.Info("event store opened; the server's sync setting cannot be seen from this account: "+
			"make sure it runs with jetstream { sync_interval: always }",
			zap.String("stream", s.name), zap.Error(err))
		return
	}
	var varz struct {
		Data struct {
			JetStream struct {
				Config struct {
					SyncInterval time.Duration `json:"sync_interval"`
					SyncAlways   bool          `json:"sync_always"`
				} `json:"config"`
			} `json:"jetstream"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &varz); err != nil {
		s.log.Warn("event store opened; unreadable VARZ answer", zap.String("stream", s.name), zap.Error(err))
		return
	}
	c := varz.Data.JetStream.Config
	if c.SyncAlways {
		s.log.Info("event store opened; the server fsyncs every write", zap.String("stream", s.name))
		return
	}
	s.log.Warn("event store opened on a server that does not fsync every write: acknowledged events "+
		"can be lost on an OS crash or power failure (set jetstream { sync_interval: always })",
		zap.String("stream", s.name), zap.Duration("sync_interval", c.SyncInterval))
}

// bound gives ctx the store's default timeout when it has no deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Close stops the flusher: the connection belongs to the caller.
func (s *Store) Close() error {
	s.flush.close()
	return nil
}

// Head is the stream's last sequence, once it is on disk: nobody acts on a commit that a
// power loss could take back.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("jetstream: head of %s: %w", s.name, err)
	}
	if err := s.flush.wait(ctx, info.State.LastSeq); err != nil {
		return 0, fmt.Errorf("jetstream: head of %s: %w", s.name, err)
	}
	return info.State.LastSeq, nil
}

// Append publishes the commit as one message, expecting the stream's subject to end at the
// sequence of its last commit: the server refuses the message if another writer got there
// first. That sequence comes from the caller (eventstore.ExactAt, or none yet for NoStream),
// who keeps the states it decides on and so knows it: the store keeps no versions of its
// own. Without it, the subject's last message is read first.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.Expected, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	subject, msg, err := s.commit(stream, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	ctx, release, err := s.guard(ctx)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	defer release()
	ctx, cancel := s.bound(ctx)
	defer cancel()
	a := attempt{stream: stream, subject: subject, msg: msg, id: commitID(stream, events), expected: expected, n: uint64(len(events))}
	st, given := expectedState(expected)
	if !given {
		if st, err = s.lastState(ctx, subject); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
		}
	}
	for {
		res, next, err := s.try(ctx, a, st)
		if err != nil || next == nil {
			return res, err
		}
		if err := ctx.Err(); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
		}
		st = *next
	}
}

// commit checks an append and builds its message (the versions are set once known; they
// do not change its size by much).
func (s *Store) commit(stream string, events []eventstore.EventData) (string, *nats.Msg, error) {
	if err := eventstore.ValidateAppend(stream, events); err != nil {
		return "", nil, err
	}
	subject, err := s.subjectOf(stream)
	if err != nil {
		return "", nil, err
	}
	msg := commitMsg(subject, 0, events)
	if size, limit := commitSize(msg), s.nc.MaxPayload()-1024; int64(size) > limit {
		return "", nil, fmt.Errorf("%w: commit of %d bytes is over the server's limit of %d",
			eventstore.ErrInvalidAppend, size, limit)
	}
	return subject, msg, nil
}

// attempt is one append: what try publishes against each state of the stream it learns.
type attempt struct {
	stream, subject, id string
	msg                 *nats.Msg
	expected            eventstore.Expected
	n                   uint64 // events in the commit
}

// try publishes a's commit against st, the stream's state as last known. It answers the
// append's result or error, or, when the server says st was stale, the state to try next.
func (s *Store) try(ctx context.Context, a attempt, st streamState) (eventstore.AppendResult, *streamState, error) {
	if st.exists && st.msgID == a.id {
		// The same commit is already the stream's latest: a retry, answer as before, once
		// it is on disk (the first attempt may have given up waiting).
		if err := s.flush.wait(ctx, st.seq); err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("append %s: %w", a.stream, err)
		}
		return st.result(), nil, nil
	}
	if !a.expected.Check(st.version, st.exists) {
		return eventstore.AppendResult{}, nil, &eventstore.WrongVersionError{
			Stream: a.stream, Expected: a.expected, Actual: st.version, Exists: st.exists,
		}
	}
	var first uint64
	if st.exists {
		first = st.version + 1
	}
	last := first + a.n - 1
	a.msg.Header[hdrFirstVersion] = []string{strconv.FormatUint(first, 10)}
	a.msg.Header[hdrLastVersion] = []string{strconv.FormatUint(last, 10)}
	ack, err := s.js.PublishMsg(ctx, a.msg,
		jetstream.WithMsgID(a.id),
		jetstream.WithExpectLastSequencePerSubject(st.seq))
	switch {
	case err == nil && ack.Duplicate:
		// The server holds this commit already, though not as the stream's latest (it is
		// within the de-duplication window): nothing was written, answer as before.
		res, err := s.resultAt(ctx, a.stream, ack.Sequence)
		return res, nil, err
	case err == nil:
		// The server has written the message to its block file; answer once an fsync
		// started after that has finished (shared with every concurrent append).
		if err := s.flush.wait(ctx, ack.Sequence); err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("append %s: %w", a.stream, err)
		}
		return eventstore.AppendResult{Version: last, Position: ack.Sequence}, nil, nil
	case isConflict(err):
		// Someone else appended, or this very commit was written by an earlier attempt
		// whose answer was lost (on a single server the subject check runs before
		// de-duplication, so such a retry answers 10071), or the caller's position was
		// stale: the next try tells which, on the server's state.
		next, err := s.lastState(ctx, a.subject)
		if err != nil {
			return eventstore.AppendResult{}, nil, fmt.Errorf("append %s: %w", a.stream, err)
		}
		return eventstore.AppendResult{}, &next, nil
	default:
		// The outcome is unknown (timeout, lost connection): a retry tells, by the commit's
		// id.
		return eventstore.AppendResult{}, nil, fmt.Errorf("append %s: %w", a.stream, writeErr(ctx, err))
	}
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// resultAt answers the AppendResult of the commit stored at seq.
func (s *Store) resultAt(ctx context.Context, stream string, seq uint64) (eventstore.AppendResult, error) {
	var m *nats.Msg
	var err error
	if s.leaderReads { // a follower may not have it yet
		m, err = s.leaderGet(ctx, fmt.Appendf(nil, `{"seq":%d}`, seq), fmt.Sprint("commit ", seq))
	} else {
		m, err = s.direct(ctx, s.directGet, fmt.Appendf(nil, `{"seq":%d}`, seq))
	}
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: read commit %d: %w", stream, seq, err)
	}
	if m == nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: commit %d is gone", stream, seq)
	}
	st, err := stateFromHeaders(m.Header)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	if err := s.flush.wait(ctx, st.seq); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	return st.result(), nil
}

// expectedState is the stream's state that expected names, when it names one whole: a
// version with its commit's position (ExactAt), or no stream (no message on the subject,
// sequence 0). The server checks the sequence; the msgID is not known.
func expectedState(expected eventstore.Expected) (streamState, bool) {
	if expected.IsNoStream() {
		return streamState{}, true
	}
	v, _ := expected.Version()
	if seq, ok := expected.At(); ok {
		return streamState{exists: true, version: v, seq: seq}, true
	}
	return streamState{}, false
}

// lastState reads the stream's state from its last message.
func (s *Store) lastState(ctx context.Context, subject string) (streamState, error) {
	m, err := s.last(ctx, subject)
	if err != nil {
		return streamState{}, fmt.Errorf("read last commit: %w", err)
	}
	var st streamState
	if m != nil {
		if st, err = stateFromHeaders(m.Header); err != nil {
			return streamState{}, fmt.Errorf("read last commit: %w", err)
		}
	}
	return st, nil
}

// direct sends a single-message direct get; nil, nil means no such message.
func (s *Store) direct(ctx context.Context, subject string, req []byte) (*nats.Msg, error) {
	m, err := s.nc.RequestWithContext(ctx, subject, req)
	if err != nil {
		return nil, err
	}
	switch m.Header.Get("Status") {
	case "":
		return m, nil
	case "404":
		return nil, nil
	default:
		return nil, fmt.Errorf("direct get: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
}

// last is the last commit on subject, nil when there is none: a direct get, or on a
// replicated stream the leader's answer, since a follower may not have the latest yet.
func (s *Store) last(ctx context.Context, subject string) (*nats.Msg, error) {
	if !s.leaderReads {
		return s.direct(ctx, s.directGet+"."+subject, nil)
	}
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	return s.leaderGet(ctx, req, "last message of "+subject)
}

// leaderGet asks the stream's leader for one message (req is a JetStream message get
// request); nil, nil means no such message. what names it in errors.
func (s *Store) leaderGet(ctx context.Context, req []byte, what string) (*nats.Msg, error) {
	m, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+s.name, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("%s: %w", what, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("%s: empty answer", what)
	}
	out := nats.NewMsg(resp.Message.Subject)
	if len(resp.Message.Header) > 0 {
		if out.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	// The headers a direct get adds, which the decoders read.
	out.Header.Set(nats.JSSequence, strconv.FormatUint(resp.Message.Seq, 10))
	out.Header.Set(nats.JSTimeStamp, resp.Message.Time.UTC().Format(time.RFC3339Nano))
	out.Header.Set(nats.JSSubject, resp.Message.Subject)
	out.Header.Set(nats.JSStream, s.name)
	out.Data = resp.Message.Data
	return out, nil
}

// LastVersion is the stream's last version and the position of its last commit as the
// server has it now (exists false: no such stream). It costs one small request: a caller
// that keeps states of its own checks them with it when other writers may exist.
func (s *Store) LastVersion(ctx context.Context, stream string) (version, position uint64, exists bool, err error) {
	subject, err := s.subjectOf(stream)
	if err != nil {
		return 0, 0, false, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	st, err := s.lastState(ctx, subject)
	if err != nil {
		return 0, 0, false, fmt.Errorf("last version of %s: %w", stream, err)
	}
	if st.exists {
		if err := s.flush.wait(ctx, st.seq); err != nil {
			return 0, 0, false, fmt.Errorf("last version of %s: %w", stream, err)
		}
	}
	return st.version, st.seq, st.exists, nil
}
