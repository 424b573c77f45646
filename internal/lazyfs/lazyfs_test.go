package lazyfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/einvoice/spaceorders/internal/lazyfs"
)

func syncPath(t *testing.T, name string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, name string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, name string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return b, true
}

// The model of a disk: content up to a file's last fsync survives, names only once their
// folder is fsynced, and nothing else.
func TestPowerCutKeepsOnlyWhatWasFsynced(t *testing.T) {
	f := lazyfs.ForTest(t, lazyfs.Options{})
	d := f.Dir()
	sub := filepath.Join(d, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	syncPath(t, d)
	kept := filepath.Join(sub, "kept")
	write(t, kept, []byte("synced"), true)
	syncPath(t, sub)
	write(t, kept, []byte(" lost"), false)
	write(t, filepath.Join(sub, "unnamed"), []byte("file synced, folder not"), true)
	write(t, filepath.Join(d, "never"), []byte("nothing synced"), false)
	if err := os.Rename(kept, filepath.Join(sub, "renamed")); err != nil {
		t.Fatal(err)
	}
	if b, _ := read(t, filepath.Join(sub, "renamed")); string(b) != "synced lost" {
		t.Fatalf("before the cut, readers see %q", b)
	}

	f.PowerCut()
	if err := os.WriteFile(filepath.Join(d, "after"), nil, 0o644); !errors.Is(err, syscall.EIO) {
		t.Fatalf("a write after the power cut answered %v, not EIO", err)
	}
	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}

	if b, ok := read(t, kept); !ok || !bytes.Equal(b, []byte("synced")) {
		t.Errorf("kept: %q, %v; want the fsynced content under the fsynced name", b, ok)
	}
	for _, name := range []string{filepath.Join(sub, "renamed"), filepath.Join(sub, "unnamed"), filepath.Join(d, "never")} {
		if b, ok := read(t, name); ok {
			t.Errorf("%s survived with %q although its folder was not fsynced", name, b)
		}
	}
	// The restarted disk works like the first.
	write(t, kept, []byte(" again"), true)
	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}
	if b, _ := read(t, kept); string(b) != "synced again" {
		t.Errorf("after a second restart: %q", b)
	}
}

// With Torn, a cut keeps some prefix of the unsynced writes: never anything else.
func TestTornCutKeepsAPrefixOfTheWrites(t *testing.T) {
	f := lazyfs.ForTest(t, lazyfs.Options{Torn: true, Seed: 7})
	name := filepath.Join(f.Dir(), "log")
	write(t, name, []byte("base."), true)
	syncPath(t, f.Dir())
	var all []byte
	all = append(all, "base."...)
	for i := 0; i < 20; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, 100)
		all = append(all, chunk...)
		write(t, name, chunk, false)
	}
	if err := f.Restart(); err != nil {
		t.Fatal(err)
	}
	b, _ := read(t, name)
	if len(b) < len("base.") || !bytes.HasPrefix(all, b) {
		t.Fatalf("after a torn cut the file holds %d bytes that are not a prefix of what was written", len(b))
	}
	t.Logf("kept %d of %d bytes", len(b), len(all))
}
