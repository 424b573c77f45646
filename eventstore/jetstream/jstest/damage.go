package jstest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CopyDir copies a folder tree: a stopped server's data folder, to damage the copy.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// FlipByte changes one bit of a byte 8 bytes after marker in the JetStream block files
// (*.blk) under dir, as bit rot or a bad sector would: at the first occurrence, or at the
// last one when last is set. The server must be stopped. It returns the file changed.
func FlipByte(t testing.TB, dir, marker string, last bool) string {
	t.Helper()
	var (
		file string
		at   = -1
		data []byte
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".blk") || (at >= 0 && !last) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		i := bytes.Index(b, []byte(marker))
		if last {
			i = bytes.LastIndex(b, []byte(marker))
		}
		// Block files are numbered in order, and WalkDir visits names in lexical order: for
		// "last", a later block wins (the tests' logs fit in one block anyway).
		if i >= 0 {
			file, at, data = p, i, b
		}
		return nil
	})
	if err != nil || at < 0 {
		t.Fatalf("no block file under %s holds %q (%v)", dir, marker, err)
	}
	data[at+len(marker)+8] ^= 0x01
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
