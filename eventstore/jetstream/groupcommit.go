package jetstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/einvoice/spaceorders/eventstore"
)

// Group commit. With SyncAlways the server fsyncs each message on its own, one after the
// other in the stream's single loop, so the log can never take more appends per second than
// the disk takes flushes. The embedded server therefore runs without SyncAlways, and the
// Store makes its appends durable itself: an R1 stream writes each message into its block
// file (<store>/jetstream/$G/streams/<S>/msgs/<n>.blk) before acknowledging it, so one
// fsync of the block files, started after an append's acknowledgement, puts that append and
// every other one acknowledged before it on disk. One fsync runs at a time; every append
// waits for the first one that starts after its acknowledgement. The fsync is run by the
// first waiter that finds none running (the leader), so that a lone append pays no
// hand-over to another goroutine, and concurrent ones share it.
//
// This relies on the server's file layout; TestGroupCommitFileLayout pins it, and the flusher
// refuses to answer (rather than answer without an fsync) when the files are not where it
// expects them.

// embeddedConns maps an Embedded's in-process connection to its server, so that Open knows
// that it must fsync the stream itself, whoever opens the store on that connection.
var embeddedConns sync.Map // *nats.Conn -> *Embedded

func registerEmbedded(e *Embedded)   { embeddedConns.Store(e.Conn, e) }
func unregisterEmbedded(e *Embedded) { embeddedConns.Delete(e.Conn) }

func embeddedOf(nc *nats.Conn) *Embedded {
	if e, ok := embeddedConns.Load(nc); ok {
		return e.(*Embedded)
	}
	return nil
}

// errFlusherStopped answers the appends still waiting when the store closes.
var errFlusherStopped = errors.New("jetstream: store closed before the append was on disk")

// flusher fsyncs one stream's block files for every group of acknowledged appends.
type flusher struct {
	storeDir  string
	streamDir string
	msgsDir   string
	// restarts counts the server's JetStream restarts (after a full disk): its files are
	// opened again, and so are the flusher's, with one fsync of everything.
	restarts func() uint64
	seen     uint64

	// durable is the highest stream sequence known to be on disk.
	durable atomic.Uint64

	mu       sync.Mutex
	written  uint64        // highest sequence known to be in the block files
	flushing bool          // a leader is fsyncing
	changed  chan struct{} // closed when a flush ends
	err      error         // a failed fsync: nothing is known to be durable any more
	closed   bool

	// Only the leader touches what follows.
	last int        // index of the highest block file
	open []*os.File // the block files to fsync: the last, and after a roll the ones before

	fsyncs atomic.Uint64 // flushes done, for benchmarks
}

// newFlusher fsyncs everything of the stream already written. lastSeq is the stream's last
// sequence as the server reported it before this call.
func newFlusher(storeDir, account, stream string, lastSeq uint64, restarts func() uint64) (*flusher, error) {
	f := &flusher{
		storeDir:  storeDir,
		streamDir: filepath.Join(storeDir, account, "streams", stream),
		restarts:  restarts,
		seen:      restarts(),
		changed:   make(chan struct{}),
	}
	f.msgsDir = filepath.Join(f.streamDir, "msgs")
	if err := f.syncAll(storeDir); err != nil {
		f.closeFiles()
		return nil, err
	}
	f.written = lastSeq
	f.durable.Store(lastSeq)
	return f, nil
}

// blockIndexes lists the block files' indexes in the msgs folder, in order.
func blockIndexes(msgsDir string) ([]int, error) {
	ents, err := os.ReadDir(msgsDir)
	if err != nil {
		return nil, err
	}
	var idx []int
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".blk")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx, nil
}

// syncAll fsyncs every block file, the stream's metadata and every folder from msgs up to
// the root. The server writes none of them with an fsync when it runs without SyncAlways.
func (f *flusher) syncAll(storeDir string) error {
	idx, err := blockIndexes(f.msgsDir)
	if err != nil {
		return fmt.Errorf("jetstream: group commit: the stream's block folder: %w (has the server's file layout changed?)", err)
	}
	for _, i := range idx {
		if err := syncPath(blockName(f.msgsDir, i)); err != nil {
			return err
		}
	}
	for _, name := range []string{"meta.inf", "meta.sum"} {
		if err := syncPath(filepath.Join(f.streamDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	// The folders, deepest first: those the server made, then every one above, so that
	// a data folder created just before (orderd makes its own) survives too. Above the
	// server's folder this is best effort: a folder may not be ours to open.
	top := filepath.Dir(storeDir)
	for d := f.msgsDir; ; d = filepath.Dir(d) {
		if err := syncPath(d); err != nil && len(d) <= len(top) {
			break
		} else if err != nil {
			return err
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	if len(idx) > 0 {
		f.last = idx[len(idx)-1]
		if err := f.track(f.last); err != nil {
			return err
		}
	}
	return nil
}

func blockName(dir string, i int) string { return filepath.Join(dir, strconv.Itoa(i)+".blk") }

func syncPath(name string) error {
	fd, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("jetstream: group commit: %w", err)
	}
	defer fd.Close()
	if err := fd.Sync(); err != nil {
		return fmt.Errorf("jetstream: group commit: fsync %s: %w", name, err)
	}
	return nil
}

// track keeps block i open for the next fsyncs.
func (f *flusher) track(i int) error {
	fd, err := os.Open(blockName(f.msgsDir, i))
	if err != nil {
		return fmt.Errorf("jetstream: group commit: block %d: %w (has the server's file layout changed?)", i, err)
	}
	f.open = append(f.open, fd)
	return nil
}

// trim closes all but the last block file. The server finishes writing a block before it
// creates the next one and never writes to it again (the stream denies deletes and
// purges), so once fsynced after a roll an older block needs no more fsyncs.
func (f *flusher) trim() {
	for len(f.open) > 1 {
		f.open[0].Close()
		f.open = f.open[1:]
	}
}

func (f *flusher) closeFiles() {
	for _, fd := range f.open {
		fd.Close()
	}
	f.open = nil
}

// wait returns once the messages up to seq, which the server has written, are on disk.
func (f *flusher) wait(ctx context.Context, seq uint64) error {
	if f == nil || f.durable.Load() >= seq {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq > f.written {
		f.written = seq
	}
	for {
		switch {
		case f.durable.Load() >= seq:
			return nil
		case f.err != nil:
			return f.err
		case f.closed:
			return errFlusherStopped
		case !f.flushing:
			f.lead()
			continue
		}
		// A flush runs, perhaps started before seq was written: wait for its end, then
		// check again (and lead the next one if nobody has).
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
			f.mu.Lock()
		case <-ctx.Done():
			f.mu.Lock()
			return fmt.Errorf("waiting for the fsync: %w", ctx.Err())
		}
	}
}

// lead runs one flush for everything written so far. f.mu is held, and released during
// the fsyncs.
func (f *flusher) lead() {
	f.flushing = true
	target := f.written
	f.mu.Unlock()
	err := f.flush()
	f.fsyncs.Add(1)
	f.mu.Lock()
	f.flushing = false
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages: nothing
		// written since the last good fsync can be called durable, now or later, and the
		// store refuses appends until the process restarts and reads what is on disk.
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: %w", eventstore.ErrNoSpace, err)
		}
		f.err = fmt.Errorf("jetstream: group commit (appends refused until orderd restarts): %w", err)
	} else if target > f.durable.Load() {
		f.durable.Store(target)
	}
	if f.closed || f.err != nil {
		f.closeFiles()
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// flush fsyncs the last block files, first following the server onto any new block: a
// roll writes the old block's tail, then creates the next file, whose name must reach the
// disk too.
func (f *flusher) flush() error {
	if n := f.restarts(); n != f.seen {
		f.closeFiles()
		f.last = 0
		if err := f.syncAll(f.storeDir); err != nil {
			return err
		}
		f.seen = n
	}
	rolled := false
	for {
		name := blockName(f.msgsDir, f.last+1)
		if _, err := os.Stat(name); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			return err
		}
		if err := f.track(f.last + 1); err != nil {
			return err
		}
		f.last++
		rolled = true
	}
	if len(f.open) == 0 {
		return fmt.Errorf("no block file in %s (has the server's file layout changed?)", f.msgsDir)
	}
	for _, fd := range f.open {
		if err := fd.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", fd.Name(), err)
		}
	}
	f.trim()
	if rolled {
		return syncPath(f.msgsDir)
	}
	return nil
}

func (f *flusher) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	if !f.flushing {
		f.closeFiles()
	}
	close(f.changed) // waiters see closed
	f.changed = make(chan struct{})
}
