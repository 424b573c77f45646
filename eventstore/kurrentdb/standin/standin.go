// Package standin is a STAND-IN for KurrentDB, not KurrentDB: an in-memory loopback gRPC
// server of the Streams service, built from the Go client's own protos, so that the kurrentdb
// adapter's mapping can be tested on machines where the real server cannot run.
//
// What it models is what the adapter relies on, shaped as KurrentDB v25.1 answers it:
//   - expected revisions and WrongExpectedVersion (both the current and the 20.6 fields);
//   - idempotent re-append of the same event ids, answered with the original position of
//     the last matched event, or, with AnswerRetriesWithoutPosition, with NoPosition (the
//     server's answer when its read-back fails, which the client turns into position 0);
//   - positions as the server gives them: every event has its own $all position, commit and
//     prepare equal to the record's log offset, growing by roughly the record's size; an
//     append answers its last event's position;
//   - a read or subscription of $all from a position that is not the start of a record (nor
//     the end of the log) refused with InvalidArgument "invalid position";
//   - the append size limit (MaxAppendSize, the server's default 1 MiB), counted over each
//     event's data, metadata and type, refused with InvalidArgument and the
//     maximum-append-size-exceeded trailers;
//   - soft-deleted streams (Delete: reads say not found, a new append goes on after the
//     last revision, a $metadata event lands in $$<stream>) and hard-deleted ones
//     (Tombstone: every read and append refused with the stream-deleted trailers, a
//     $streamDeleted event in $all);
//   - stream not found, a log that starts with a system event, catch-up subscriptions with
//     the filters the client sends, checkpoints of filtered subscriptions, dropped
//     subscriptions.
//
// Not modelled: expected revisions of Delete and Tombstone, scavenging (deleted streams'
// events stay in $all, as they do on a server until a scavenge), stream metadata other
// than the deletion ($maxAge, $maxCount, ACLs), link events and resolving them, persistent
// subscriptions, BatchAppend, ServerFeatures (the client tolerates Unimplemented), gossip,
// clusters and leader redirects, persistence, authentication, the exact byte layout of
// records (positions are offsets, not the server's), and the IdempotentNotReady case as
// such: LeaveAppendsUnanswered stands for it (the client sees the same: no answer before
// its deadline), but the stand-in writes the events first. Passing tests
// against it prove the adapter's mapping of the client's protocol, never the real server's
// behaviour.
package standin

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DefaultMaxAppendSize is the server's default MaxAppendSize: 1 MiB.
const DefaultMaxAppendSize = 1 << 20

// Server is the in-memory stand-in. The zero value is not usable; call New.
type Server struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*record          // $all, in position order
	streams map[string]*stream // by name
	next    uint64             // position of the next record: the end of the log
	changed chan struct{}      // closed and replaced on every write: wakes live subscriptions
	drop    chan struct{}      // closed and replaced by DropSubscriptions
	// dropAfter, when > 0, ends every subscription after it has sent that many events.
	dropAfter int
	// live counts the subscriptions caught up and waiting for new events.
	live int
	// maxAppendSize bounds one append as the server counts it.
	maxAppendSize int
	// retriesWithoutPosition answers an idempotent re-append with NoPosition.
	retriesWithoutPosition bool
	// unanswered is how many coming appends are written but never answered.
	unanswered int
}

type stream struct {
	revs []int // indexes into log, by revision
	// from is the first revision a read sees: a soft delete moves it past the last one.
	from       uint64
	tombstoned bool
}

// exists tells whether the stream has events a read would see.
func (st *stream) exists() bool { return st != nil && uint64(len(st.revs)) > st.from }

type record struct {
	id       uuid.UUID
	stream   string
	revision uint64
	pos      uint64            // commit = prepare = the record's offset in the log
	meta     map[string]string // type, content-type, created: the system metadata
	custom   []byte
	data     []byte
}

// New returns a stand-in whose log already holds one system event, as a real log does, so
// that readers of $all meet events they must skip.
func New() *Server {
	s := &Server{
		streams:       map[string]*stream{},
		next:          1024, // a real log never starts at position 0
		changed:       make(chan struct{}),
		drop:          make(chan struct{}),
		maxAppendSize: DefaultMaxAppendSize,
	}
	s.write("$settings", []*api.AppendReq_ProposedMessage{system("$settings", `{}`)})
	return s
}

func system(typ, data string) *api.AppendReq_ProposedMessage {
	return &api.AppendReq_ProposedMessage{
		Id:       toProtoUUID(uuid.New(), false),
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     []byte(data),
	}
}

// Start serves a new stand-in on a loopback port; see (*Server).Start.
func Start() (connString string, stop func()) { return New().Start() }

// Start serves s on 127.0.0.1 on a free port, without TLS, and returns the esdb://
// connection string the client needs and a function that stops the server (idempotent).
func (s *Server) Start() (connString string, stop func()) { return s.StartAt("127.0.0.1:0") }

// StartAt is Start on a given address: a stopped stand-in can come back, with its data,
// where its clients expect it, as a restarted server would.
func (s *Server) StartAt(addr string) (connString string, stop func()) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		panic(fmt.Sprintf("standin: listen: %v", err))
	}
	g := grpc.NewServer()
	api.RegisterStreamsServer(g, s)
	go func() { _ = g.Serve(lis) }()
	var once sync.Once
	// Stop, not GracefulStop: live subscriptions never end on their own.
	return "esdb://" + lis.Addr().String() + "?tls=false", func() { once.Do(g.Stop) }
}

// SetMaxAppendSize sets the largest append the stand-in accepts, as the server's
// MaxAppendSize setting (KURRENTDB_MAX_APPEND_SIZE) does.
func (s *Server) SetMaxAppendSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxAppendSize = n
}

// AnswerRetriesWithoutPosition makes an idempotent re-append answer NoPosition instead of
// the original position, as the server does when it cannot read the original back.
func (s *Server) AnswerRetriesWithoutPosition(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retriesWithoutPosition = on
}

// LeaveAppendsUnanswered makes the next n appends be written but never answered, until
// the client gives up at its deadline: an answer lost on the way, or (for a re-append) the
// server dropping one it cannot check yet (IdempotentNotReady).
func (s *Server) LeaveAppendsUnanswered(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unanswered = n
}

// DropSubscriptions ends every open subscription with an error, as a server does when it
// drops a slow or orphaned subscriber; the client sees SubscriptionDropped.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
}

// LiveSubscriptions is how many subscriptions have caught up and wait for new events: a
// test waits for one before it drops it.
func (s *Server) LiveSubscriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// goLive counts a subscription live until the function it returns is called.
func (s *Server) goLive() (gone func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live++
	return func() { s.mu.Lock(); s.live--; s.mu.Unlock() }
}

// DropSubscriptionsAfter makes every subscription opened from now on drop after it has sent
// n events (0: never), so that a test can force a resubscription in the middle of a commit.
func (s *Server) DropSubscriptionsAfter(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfter = n
}

// streamDeleted is the server's error for a hard-deleted stream: the client recognises it
// by its trailers, not by its status code.
func streamDeleted(name string) error {
	return status.Error(codes.FailedPrecondition, fmt.Sprintf("Event stream '%s' is deleted.", name))
}

func deletedTrailer(name string) metadata.MD {
	return metadata.Pairs("exception", "stream-deleted", "stream-name", name)
}

// size is an event's size as the server counts it against MaxAppendSize (its
// Event.SizeOnDisk: data, metadata and type, plus a small fixed part).
func size(m *api.AppendReq_ProposedMessage) int {
	return len(m.GetData()) + len(m.GetCustomMetadata()) + 2*len(m.GetMetadata()["type"]) + 32
}

// Append implements the client-streaming Append: one options message, then the events.
func (s *Server) Append(srv api.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil || opts.GetStreamIdentifier() == nil {
		return status.Error(codes.InvalidArgument, "first append message must carry options")
	}
	s.mu.Lock()
	limit := s.maxAppendSize
	s.mu.Unlock()
	var msgs []*api.AppendReq_ProposedMessage
	total := 0
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := req.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		// The server counts as it receives, and gives up at the first event over the limit.
		if total += size(pm); total > limit {
			srv.SetTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(limit)))
			return status.Error(codes.InvalidArgument, fmt.Sprintf("Maximum Append Size of %d Exceeded.", limit))
		}
		if pm.GetMetadata()["type"] == "" || pm.GetMetadata()["content-type"] == "" {
			return status.Error(codes.InvalidArgument, "proposed message lacks type or content-type")
		}
		msgs = append(msgs, pm)
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	resp, deleted := s.append(name, opts, msgs)
	if deleted {
		srv.SetTrailer(deletedTrailer(name))
		return streamDeleted(name)
	}
	s.mu.Lock()
	mute := s.unanswered > 0
	if mute {
		s.unanswered--
	}
	s.mu.Unlock()
	if mute {
		<-srv.Context().Done()
		return status.FromContextError(srv.Context().Err()).Err()
	}
	return srv.SendAndClose(resp)
}

func (s *Server) append(name string, opts *api.AppendReq_Options, msgs []*api.AppendReq_ProposedMessage) (resp *api.AppendResp, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st != nil && st.tombstoned {
		return nil, true
	}
	var revs []int
	if st != nil {
		revs = st.revs
	}
	exists := st.exists()
	cur := uint64(len(revs)) - 1 // meaningless unless exists
	if r, hit := s.retry(opts, st, msgs); hit {
		return r, false
	}
	if !expected(opts, exists, cur) {
		return wrongExpectedVersion(opts, exists, cur), false
	}
	if len(msgs) == 0 {
		if !exists {
			return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}}, false
		}
		return success(cur, s.log[revs[len(revs)-1]].pos), false
	}
	last := s.write(name, msgs)
	return success(last.revision, last.pos), false
}

// expected says whether the stream's state (whether it exists, its current revision cur)
// is what the append expects.
func expected(opts *api.AppendReq_Options, exists bool, cur uint64) bool {
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		return exists && cur == e.Revision
	case *api.AppendReq_Options_NoStream:
		return !exists
	case *api.AppendReq_Options_StreamExists:
		return exists
	case *api.AppendReq_Options_Any:
		return true
	}
	return false
}

// retry answers an append whose events the stream already holds, where the expected
// revision says they would go: a client's retry of a write that went through. The caller
// holds s.mu.
func (s *Server) retry(opts *api.AppendReq_Options, st *stream, msgs []*api.AppendReq_ProposedMessage) (*api.AppendResp, bool) {
	if st == nil {
		return nil, false
	}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		return s.retried(st.revs, int(e.Revision)+1, msgs)
	case *api.AppendReq_Options_NoStream:
		return s.retried(st.revs, int(st.from), msgs)
	case *api.AppendReq_Options_StreamExists, *api.AppendReq_Options_Any:
		// Without an exact revision the server can only look the first id up among the
		// stream's events (it keeps a cache of recent ids).
		if len(msgs) == 0 {
			return nil, false
		}
		first := fromProtoUUID(msgs[0].GetId())
		for i, idx := range st.revs {
			if s.log[idx].id == first {
				if r, hit := s.retried(st.revs, i, msgs); hit {
					return r, true
				}
			}
		}
	}
	return nil, false
}

// retried answers a retried write, recognised as the server does by its event ids: the
// stream's events from revs[start] on are already msgs. A partial match is not a retry but
// a wrong version (what the server calls corrupted idempotency). The caller holds s.mu.
func (s *Server) retried(revs []int, start int, msgs []*api.AppendReq_ProposedMessage) (*api.AppendResp, bool) {
	if start < 0 || len(msgs) == 0 || start+len(msgs) > len(revs) {
		return nil, false
	}
	for i, m := range msgs {
		if s.log[revs[start+i]].id != fromProtoUUID(m.GetId()) {
			return nil, false
		}
	}
	last := s.log[revs[start+len(msgs)-1]]
	if s.retriesWithoutPosition {
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
			PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
		}}}, true
	}
	return success(last.revision, last.pos), true
}

// write appends msgs to the log as one commit; the caller holds s.mu (or owns s). Every
// event gets its own position, as on the server.
func (s *Server) write(name string, msgs []*api.AppendReq_ProposedMessage) *record {
	created := strconv.FormatInt(time.Now().UnixNano()/100, 10) // .NET ticks since the Unix epoch
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	var r *record
	for _, m := range msgs {
		meta := map[string]string{"created": created}
		for k, v := range m.GetMetadata() {
			meta[k] = v
		}
		r = &record{
			id:       fromProtoUUID(m.GetId()),
			stream:   name,
			revision: uint64(len(st.revs)),
			pos:      s.next,
			meta:     meta,
			custom:   bytes.Clone(m.GetCustomMetadata()),
			data:     bytes.Clone(m.GetData()),
		}
		// Positions are byte offsets in the real log: grow by roughly the record's size.
		s.next += uint64(64 + len(name) + len(r.data) + len(r.custom))
		st.revs = append(st.revs, len(s.log))
		s.log = append(s.log, r)
	}
	s.wake()
	return r
}

func (s *Server) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func success(revision, pos uint64) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: revision},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: pos, PreparePosition: pos,
		}}}}}
}

// Delete soft-deletes a stream: reads say it is not found, and a new append goes on from
// the revision after its last. The server records it as the stream's metadata ($tb, the
// truncate-before revision) in $$<stream>.
func (s *Server) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tombstoned(ctx, name); err != nil {
		return nil, err
	}
	st := s.streams[name]
	if st == nil {
		st = &stream{}
		s.streams[name] = st
	}
	st.from = uint64(len(st.revs))
	r := s.write("$$"+name, []*api.AppendReq_ProposedMessage{system("$metadata", fmt.Sprintf(`{"$tb":%d}`, st.from))})
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{
		CommitPosition: r.pos, PreparePosition: r.pos,
	}}}, nil
}

// Tombstone hard-deletes a stream: it can never be read or written again. The server
// writes a $streamDeleted event into it.
func (s *Server) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tombstoned(ctx, name); err != nil {
		return nil, err
	}
	r := s.write(name, []*api.AppendReq_ProposedMessage{system("$streamDeleted", `{}`)})
	s.streams[name].tombstoned = true
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: r.pos, PreparePosition: r.pos,
	}}}, nil
}

// tombstoned is the server's answer, with its trailer, to a call on a stream a tombstone
// closed for good; nil for any other stream. The caller holds s.mu.
func (s *Server) tombstoned(ctx context.Context, name string) error {
	if st := s.streams[name]; st != nil && st.tombstoned {
		_ = grpc.SetTrailer(ctx, deletedTrailer(name))
		return streamDeleted(name)
	}
	return nil
}

// wrongExpectedVersion fills both the current fields and the ones kept for clients older
// than 20.6, as the server does.
func wrongExpectedVersion(opts *api.AppendReq_Options, exists bool, cur uint64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if exists {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: cur}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: cur}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: e.Revision}
	case *api.AppendReq_Options_NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		// 20.6 had no "no stream" here; it sent the revision -1 as an unsigned number.
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
	case *api.AppendReq_Options_StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// Read serves one-shot reads (count option) and subscriptions (subscription option), of one
// stream or of $all.
func (s *Server) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read without options")
	}
	f, err := newFilter(o)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		s.mu.Lock()
		st := s.streams[name]
		deleted := st != nil && st.tombstoned
		s.mu.Unlock()
		if deleted {
			srv.SetTrailer(deletedTrailer(name))
			return streamDeleted(name)
		}
	}
	str := o.GetUuidOption().GetString_() != nil
	switch o.GetCountOption().(type) {
	case *api.ReadReq_Options_Count:
		return s.readOnce(o, f, str, srv)
	case *api.ReadReq_Options_Subscription:
		if o.GetReadDirection() != api.ReadReq_Options_Forwards {
			return status.Error(codes.InvalidArgument, "subscriptions only go forwards")
		}
		return s.subscribe(o, f, str, srv)
	default:
		return status.Error(codes.InvalidArgument, "read without count or subscription")
	}
}

// invalidPosition is the server's answer to a $all position that is not a record's start.
func invalidPosition(commit, prepare uint64) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf("invalid position: commit %d, prepare %d", commit, prepare))
}

// at returns the index of the record at (commit, prepare), len(s.log) for the end of the
// log, or false when that is not where a record starts. The caller holds s.mu.
func (s *Server) at(commit, prepare uint64) (int, bool) {
	if commit != prepare {
		return 0, false
	}
	if commit == s.next {
		return len(s.log), true
	}
	i := sort.Search(len(s.log), func(i int) bool { return s.log[i].pos >= commit })
	return i, i < len(s.log) && s.log[i].pos == commit
}

// visible returns the revisions of a stream a read sees, as indexes into the log.
func (st *stream) visible() []int {
	if !st.exists() {
		return nil
	}
	return st.revs[st.from:]
}

func (s *Server) readOnce(o *api.ReadReq_Options, f *filter, str bool, srv api.Streams_ReadServer) error {
	s.mu.Lock()
	var out []*record
	var err error
	if so := o.GetStream(); so != nil {
		var found bool
		if out, found = s.readStream(so, o.GetCount(), o.GetReadDirection() == api.ReadReq_Options_Backwards); !found {
			s.mu.Unlock()
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: so.GetStreamIdentifier().GetStreamName()},
			}}})
		}
	} else {
		out, err = s.readAll(o, f)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, r := range out {
		if err := srv.Send(eventResp(r, str)); err != nil {
			return err
		}
	}
	return nil
}

// readStream reads at most n of a stream's events from the revision so names, or says the
// stream is not found. Stream revisions are inclusive in both directions. The caller holds
// s.mu.
func (s *Server) readStream(so *api.ReadReq_Options_StreamOptions, n uint64, back bool) (out []*record, found bool) {
	st := s.streams[string(so.GetStreamIdentifier().GetStreamName())]
	revs := st.visible()
	if len(revs) == 0 {
		return nil, false
	}
	var i int
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		i = int(min(max(r.Revision, st.from)-st.from, uint64(len(revs))))
		if back && i == len(revs) {
			i--
		}
	case *api.ReadReq_Options_StreamOptions_End:
		i = len(revs)
		if back {
			i--
		}
	}
	for ; i >= 0 && i < len(revs) && uint64(len(out)) < n; i = step(i, back) {
		out = append(out, s.log[revs[i]])
	}
	return out, true
}

// readAll reads the events of $all o asks for that f lets through. Forwards from a position
// includes the event at it, backwards excludes it; a position that is no record's start is
// refused. The caller holds s.mu.
func (s *Server) readAll(o *api.ReadReq_Options, f *filter) ([]*record, error) {
	n := o.GetCount()
	back := o.GetReadDirection() == api.ReadReq_Options_Backwards
	i := 0
	switch a := o.GetAll().GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		c, p := a.Position.GetCommitPosition(), a.Position.GetPreparePosition()
		var ok bool
		if i, ok = s.at(c, p); !ok {
			return nil, invalidPosition(c, p)
		}
		if back {
			i--
		}
	case *api.ReadReq_Options_AllOptions_End:
		i = len(s.log)
		if back {
			i--
		}
	}
	var out []*record
	for ; i >= 0 && i < len(s.log) && uint64(len(out)) < n; i = step(i, back) {
		if f.match(s.log[i]) {
			out = append(out, s.log[i])
		}
	}
	return out, nil
}

func step(i int, back bool) int {
	if back {
		return i - 1
	}
	return i + 1
}

// subscribe sends a confirmation, the stored events after the start point (exclusive, as
// the server's subscriptions are), CaughtUp, then live events until the client goes away
// or the subscription is dropped.
func (s *Server) subscribe(o *api.ReadReq_Options, f *filter, str bool, srv api.Streams_ReadServer) error {
	ctx := srv.Context()
	s.mu.Lock()
	drop, dropAfter := s.drop, s.dropAfter
	name, next, err := s.subscriptionStart(o)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{
		SubscriptionId: uuid.NewString(),
	}}}); err != nil {
		return err
	}

	// A filtered subscription reports how far it has searched every window*multiplier
	// events, so that a client can checkpoint past long runs of filtered-out events.
	every := 0
	if fo := o.GetFilter(); fo != nil {
		every = int(max(fo.GetMax(), 1) * max(fo.GetCheckpointIntervalMultiplier(), 1))
	}
	sent, scanned, caughtUp := 0, 0, false
	for {
		batch, changed := s.from(name, next)
		next += len(batch)
		for _, r := range batch {
			scanned++
			if f.match(r) {
				if err := srv.Send(eventResp(r, str)); err != nil {
					return err
				}
				sent++
				if dropAfter > 0 && sent >= dropAfter {
					return status.Error(codes.Aborted, "stand-in dropped the subscription")
				}
			}
			if every > 0 && scanned%every == 0 {
				if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
					CommitPosition: r.pos, PreparePosition: r.pos,
				}}}); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
			defer s.goLive()()
		}
		select {
		case <-changed:
		case <-drop:
			return status.Error(codes.Aborted, "stand-in dropped the subscription")
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// subscriptionStart is where a subscription begins: the stream's name ("" for $all) and
// the index of the first record to send, into the stream's revisions or, for $all, into the
// log. The caller holds s.mu.
func (s *Server) subscriptionStart(o *api.ReadReq_Options) (name string, next int, err error) {
	so := o.GetStream()
	if so == nil {
		switch a := o.GetAll().GetAllOption().(type) {
		case *api.ReadReq_Options_AllOptions_Position:
			c, p := a.Position.GetCommitPosition(), a.Position.GetPreparePosition()
			i, ok := s.at(c, p)
			if !ok {
				return "", 0, invalidPosition(c, p)
			}
			next = min(i+1, len(s.log))
		case *api.ReadReq_Options_AllOptions_End:
			next = len(s.log)
		}
		return "", next, nil
	}
	name = string(so.GetStreamIdentifier().GetStreamName())
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = int(r.Revision) + 1
	case *api.ReadReq_Options_StreamOptions_End:
		if st := s.streams[name]; st != nil {
			next = len(st.revs)
		}
	}
	return name, next, nil
}

// from returns the records a subscription to the stream name ("" for $all) has still to
// look at, from index next on, and the channel closed at the next write after them.
func (s *Server) from(name string, next int) (batch []*record, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		if next < len(s.log) {
			batch = append(batch, s.log[next:]...)
		}
	} else if st := s.streams[name]; st != nil && next < len(st.revs) {
		for _, idx := range st.revs[next:] {
			batch = append(batch, s.log[idx])
		}
	}
	return batch, s.changed
}

func eventResp(r *record, str bool) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toProtoUUID(r.id, str),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.pos,
			CommitPosition:   r.pos,
			Metadata:         r.meta,
			CustomMetadata:   r.custom,
			Data:             r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}}
}

// filter is the server-side filter of a read: on stream name or event type, by prefixes or
// a regular expression (the server's are .NET regexes; Go's RE2 agrees on the simple ones
// clients send).
type filter struct {
	onType   bool
	prefixes []string
	re       *regexp.Regexp
}

func newFilter(o *api.ReadReq_Options) (*filter, error) {
	fo := o.GetFilter()
	if fo == nil {
		return nil, nil
	}
	var expr *api.ReadReq_Options_FilterOptions_Expression
	f := &filter{}
	switch x := fo.GetFilter().(type) {
	case *api.ReadReq_Options_FilterOptions_StreamIdentifier:
		expr = x.StreamIdentifier
	case *api.ReadReq_Options_FilterOptions_EventType:
		expr, f.onType = x.EventType, true
	default:
		return nil, errors.New("filter without stream or event type expression")
	}
	f.prefixes = expr.GetPrefix()
	if expr.GetRegex() != "" {
		re, err := regexp.Compile(expr.GetRegex())
		if err != nil {
			return nil, fmt.Errorf("filter regex: %w", err)
		}
		f.re = re
	}
	return f, nil
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	subject := r.stream
	if f.onType {
		subject = r.meta["type"]
	}
	if f.re != nil {
		return f.re.MatchString(subject)
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

func toProtoUUID(id uuid.UUID, str bool) *shared.UUID {
	if str {
		return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(id[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(id[8:])),
	}}}
}

func fromProtoUUID(u *shared.UUID) uuid.UUID {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(st.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(st.GetLeastSignificantBits()))
		return id
	}
	id, _ := uuid.Parse(u.GetString_())
	return id
}
