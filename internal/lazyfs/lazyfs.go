// Package lazyfs is a FUSE filesystem for power-loss tests, after Jepsen's LazyFS: it keeps
// in memory what was written but not fsynced, and loses it when the power is cut.
//
// Its model of a disk: a file's content survives up to its last fsync; a name in a folder
// (a new file, a rename, an unlink) survives only once the folder itself is fsynced. On a
// power cut with Torn set, each file also keeps a random prefix of its unsynced writes, the
// last of them cut at a random byte, as a disk that wrote some pages before the power went.
package lazyfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// ErrCannotMount: FUSE is not available here (no /dev/fuse, not root, no fusermount).
var ErrCannotMount = errors.New("lazyfs: cannot mount a FUSE filesystem here")

// Options of a mount.
type Options struct {
	// Torn keeps a random prefix of each file's unsynced writes on a power cut, instead of
	// none of them.
	Torn bool
	// Seed of the random choices (0: a random seed).
	Seed uint64
}

// FS is a mounted lazy filesystem.
type FS struct {
	dir  string
	opts Options
	rnd  *rand.Rand

	mu     sync.Mutex // guards every node's content and the flags below
	off    bool       // the power is cut: every operation fails
	image  *imgDir    // what survived the cut
	root   *dir
	server *fuse.Server
}

// Mount mounts an empty lazy filesystem on dir, which must exist.
func Mount(dir string, opts Options) (*FS, error) {
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	f := &FS{dir: dir, opts: opts, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if err := f.mount(&imgDir{entries: map[string]any{}, mode: 0o755}); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *FS) mount(img *imgDir) error {
	root := f.build(img)
	zero := time.Duration(0)
	srv, err := fs.Mount(f.dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true, // as root: mount(2) itself, no fusermount needed
			FsName:            "lazyfs",
			Name:              "lazyfs",
			DisableXAttrs:     true,
		},
		// Every change goes through this mount, so the kernel's caches stay right; no
		// negative entries, so that a name restored by a restart is seen at once.
		NegativeTimeout: &zero,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCannotMount, err)
	}
	f.server = srv
	return nil
}

// Dir is the mount point.
func (f *FS) Dir() string { return f.dir }

// PowerCut freezes the filesystem as a disk that lost its power: what was not fsynced is
// gone, and every operation from now on fails with EIO, so that the processes still using
// it change nothing. Close them, then Restart.
func (f *FS) PowerCut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return
	}
	f.off = true
	f.image = f.root.durableImage()
}

// Restart unmounts the filesystem and mounts it again with what survived the power cut
// (PowerCut first if it was not cut). Every file on the old mount must be closed.
func (f *FS) Restart() error {
	f.PowerCut()
	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	img := f.image
	f.off, f.image = false, nil
	f.mu.Unlock()
	return f.mount(img)
}

// Unmount unmounts the filesystem; its content is gone.
func (f *FS) Unmount() error {
	f.PowerCut()
	return f.unmount()
}

func (f *FS) unmount() error {
	var err error
	// Files closed just before may still be released by the kernel: try for a while.
	for i := 0; i < 100; i++ {
		if err = f.server.Unmount(); err == nil {
			f.server.Wait()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("lazyfs: unmount %s: %w", f.dir, err)
}

// The image of what survives: folders' durable names, files' durable content.
type imgDir struct {
	entries map[string]any // *imgDir or *imgFile
	mode    uint32
}

type imgFile struct {
	data []byte
	mode uint32
}

// build makes the root of a new mount from an image; OnAdd builds the rest.
func (f *FS) build(img *imgDir) *dir {
	d := &dir{lfs: f, mode: img.mode, durable: map[string]any{}, img: img}
	f.root = d
	return d
}
