package lazyfs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dir is a folder. Its current names are the go-fuse inode tree's children; durable holds
// the names as of its last fsync (values *dir or *file), the only ones a power cut keeps.
type dir struct {
	fs.Inode
	lfs     *FS
	mode    uint32
	mtime   time.Time
	durable map[string]any
	img     *imgDir // content to build when the mount adds this folder
}

// file is a regular file: data is what readers see, durable what survives a power cut, and
// pending the writes in between, in order.
type file struct {
	fs.Inode
	lfs     *FS
	mode    uint32
	mtime   time.Time
	data    []byte
	durable []byte
	pending []write
}

// write is one change since the last fsync: data at off, or a truncation to size when data
// is nil.
type write struct {
	off  int64
	data []byte
	size int64
}

var (
	_ fs.NodeOnAdder   = (*dir)(nil)
	_ fs.NodeGetattrer = (*dir)(nil)
	_ fs.NodeSetattrer = (*dir)(nil)
	_ fs.NodeCreater   = (*dir)(nil)
	_ fs.NodeMkdirer   = (*dir)(nil)
	_ fs.NodeUnlinker  = (*dir)(nil)
	_ fs.NodeRmdirer   = (*dir)(nil)
	_ fs.NodeRenamer   = (*dir)(nil)
	_ fs.NodeFsyncer   = (*dir)(nil)
	_ fs.NodeStatfser  = (*dir)(nil)
	_ fs.NodeOpener    = (*file)(nil)
	_ fs.NodeReader    = (*file)(nil)
	_ fs.NodeWriter    = (*file)(nil)
	_ fs.NodeFlusher   = (*file)(nil)
	_ fs.NodeReleaser  = (*file)(nil)
	_ fs.NodeFsyncer   = (*file)(nil)
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeSetattrer = (*file)(nil)
	_ fs.NodeStatfser  = (*file)(nil)
)

// OnAdd builds the folder's content from the image it was made from, as durable.
func (d *dir) OnAdd(ctx context.Context) {
	d.populate(ctx)
}

func (d *dir) populate(ctx context.Context) {
	img := d.img
	d.img = nil
	if img == nil {
		return
	}
	for name, e := range img.entries {
		switch e := e.(type) {
		case *imgDir:
			c := &dir{lfs: d.lfs, mode: e.mode, mtime: time.Now(), durable: map[string]any{}, img: e}
			d.AddChild(name, d.NewPersistentInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFDIR}), false)
			c.populate(ctx)
			d.durable[name] = c
		case *imgFile:
			c := &file{lfs: d.lfs, mode: e.mode, mtime: time.Now(), data: e.data, durable: clone(e.data)}
			d.AddChild(name, d.NewPersistentInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFREG}), false)
			d.durable[name] = c
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// lock takes the filesystem's lock, or answers EIO once the power is cut.
func (f *FS) lock() syscall.Errno {
	f.mu.Lock()
	if f.off {
		f.mu.Unlock()
		return syscall.EIO
	}
	return 0
}

func (d *dir) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	out.Mode = syscall.S_IFDIR | d.mode
	out.Nlink = 2
	out.SetTimes(nil, &d.mtime, &d.mtime)
	return 0
}

func (d *dir) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	if m, ok := in.GetMode(); ok {
		d.mode = m & 0o7777
	}
	out.Mode = syscall.S_IFDIR | d.mode
	out.Nlink = 2
	return 0
}

func (d *dir) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := d.lfs.lock(); e != 0 {
		return nil, nil, 0, e
	}
	defer d.lfs.mu.Unlock()
	c := &file{lfs: d.lfs, mode: mode & 0o7777, mtime: time.Now()}
	d.mtime = c.mtime
	out.Mode = syscall.S_IFREG | c.mode
	out.Nlink = 1
	return d.NewPersistentInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFREG}), nil, 0, 0
}

func (d *dir) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := d.lfs.lock(); e != 0 {
		return nil, e
	}
	defer d.lfs.mu.Unlock()
	c := &dir{lfs: d.lfs, mode: mode & 0o7777, mtime: time.Now(), durable: map[string]any{}}
	d.mtime = c.mtime
	out.Mode = syscall.S_IFDIR | c.mode
	out.Nlink = 2
	return d.NewPersistentInode(ctx, c, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// Unlink, Rmdir and Rename change only the current names (go-fuse moves the inodes once
// they answer OK): the durable ones follow at the folder's next fsync.
func (d *dir) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	d.mtime = time.Now()
	return 0
}

func (d *dir) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	if c := d.GetChild(name); c != nil && len(c.Children()) > 0 {
		return syscall.ENOTEMPTY
	}
	d.mtime = time.Now()
	return 0
}

func (d *dir) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	const noReplace, exchange = 1, 2 // RENAME_NOREPLACE, RENAME_EXCHANGE
	if flags&exchange != 0 {
		return syscall.ENOTSUP
	}
	if flags&noReplace != 0 && newParent.EmbeddedInode().GetChild(newName) != nil {
		return syscall.EEXIST
	}
	d.mtime = time.Now()
	return 0
}

// Fsync of a folder makes its current names durable.
func (d *dir) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	if e := d.lfs.lock(); e != 0 {
		return e
	}
	defer d.lfs.mu.Unlock()
	d.durable = map[string]any{}
	for name, c := range d.Children() {
		d.durable[name] = c.Operations()
	}
	return 0
}

func statfs(out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = 1 << 24 // 64 GiB
	out.Bfree = out.Blocks
	out.Bavail = out.Blocks
	out.Files = 1 << 20
	out.Ffree = out.Files
	out.NameLen = 255
	return 0
}

func (d *dir) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno { return statfs(out) }

// durableImage is what of d a power cut keeps. The lock is held.
func (d *dir) durableImage() *imgDir {
	img := &imgDir{entries: map[string]any{}, mode: d.mode}
	for name, c := range d.durable {
		switch c := c.(type) {
		case *dir:
			img.entries[name] = c.durableImage()
		case *file:
			img.entries[name] = &imgFile{data: c.survivor(), mode: c.mode}
		}
	}
	return img
}

// survivor is the file's content after a power cut: its durable content, and with Torn a
// random prefix of the writes since, the last one cut at a random byte.
func (c *file) survivor() []byte {
	out := clone(c.durable)
	if !c.lfs.opts.Torn || len(c.pending) == 0 {
		return out
	}
	r := c.lfs.rnd
	keep := r.IntN(len(c.pending) + 1)
	for i, w := range c.pending[:keep] {
		if i == keep-1 && w.data != nil && len(w.data) > 0 {
			w.data = w.data[:r.IntN(len(w.data)+1)]
		}
		out = apply(out, w)
	}
	return out
}

func apply(b []byte, w write) []byte {
	if w.data == nil {
		return resize(b, w.size)
	}
	if end := w.off + int64(len(w.data)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[w.off:], w.data)
	return b
}

func resize(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size]
	}
	if size <= int64(cap(b)) {
		n := len(b)
		b = b[:size]
		clear(b[n:])
		return b
	}
	n := make([]byte, size, max(size, int64(2*cap(b))))
	copy(n, b)
	return n
}

func (c *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if e := c.lfs.lock(); e != 0 {
		return nil, 0, e
	}
	defer c.lfs.mu.Unlock()
	if flags&syscall.O_TRUNC != 0 {
		c.change(write{size: 0})
	}
	return nil, 0, 0
}

// change applies w to what readers see and remembers it for the next fsync.
func (c *file) change(w write) {
	c.data = apply(c.data, w)
	if w.data != nil {
		w.data = clone(w.data)
	}
	c.pending = append(c.pending, w)
	c.mtime = time.Now()
}

func (c *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if e := c.lfs.lock(); e != 0 {
		return nil, e
	}
	defer c.lfs.mu.Unlock()
	if off >= int64(len(c.data)) {
		return fuse.ReadResultData(nil), 0
	}
	n := copy(dest, c.data[off:])
	return fuse.ReadResultData(dest[:n]), 0
}

func (c *file) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if e := c.lfs.lock(); e != 0 {
		return 0, e
	}
	defer c.lfs.mu.Unlock()
	c.change(write{off: off, data: data})
	return uint32(len(data)), 0
}

func (c *file) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

func (c *file) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

// Fsync makes the file's content durable (its name depends on its folder's fsync).
func (c *file) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	if e := c.lfs.lock(); e != 0 {
		return e
	}
	defer c.lfs.mu.Unlock()
	for _, w := range c.pending {
		c.durable = apply(c.durable, w)
	}
	c.pending = nil
	return 0
}

func (c *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := c.lfs.lock(); e != 0 {
		return e
	}
	defer c.lfs.mu.Unlock()
	c.attr(&out.Attr)
	return 0
}

func (c *file) attr(a *fuse.Attr) {
	a.Mode = syscall.S_IFREG | c.mode
	a.Nlink = 1
	a.Size = uint64(len(c.data))
	a.Blocks = (a.Size + 511) / 512
	a.SetTimes(nil, &c.mtime, &c.mtime)
}

func (c *file) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := c.lfs.lock(); e != 0 {
		return e
	}
	defer c.lfs.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		c.change(write{size: int64(sz)})
	}
	if m, ok := in.GetMode(); ok {
		c.mode = m & 0o7777
	}
	if mt, ok := in.GetMTime(); ok {
		c.mtime = mt
	}
	c.attr(&out.Attr)
	return 0
}

func (c *file) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno { return statfs(out) }
