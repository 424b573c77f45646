package mailer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/internal/testwait"
)

func outboxEmail(name string) Email {
	return Email{ID: name, Name: name, MessageID: name + "@fe.example.com",
		From: "noreply@fe.example.com", To: "mario@example.it", Subject: name,
		Text: "testo", HTML: "<p>testo</p>", Date: time.Now()}
}

// Concurrent Sends share a folder fsync, and none returns before a folder fsync that
// started after its own rename: once Send returns (and the mailer records the email as
// sent), the email's name in the folder is on disk.
func TestOutboxSendsShareFolderSyncs(t *testing.T) {
	dir := t.TempDir()
	o, err := NewOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		listing []map[string]bool // the emails in the folder as each fsync started
	)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	syncFolder = func(d string) error {
		names := map[string]bool{}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			names[e.Name()] = true
		}
		mu.Lock()
		listing = append(listing, names)
		first := len(listing) == 1
		mu.Unlock()
		if first {
			<-release // a slow disk: the other Sends pile up behind this fsync
		}
		return syncPath(d)
	}
	t.Cleanup(func() { syncFolder = syncPath })

	errs := make(chan error, 32)
	go func() { errs <- o.Send(context.Background(), outboxEmail("first")) }()
	testwait.For(t, "the first email's folder fsync", func() bool { mu.Lock(); defer mu.Unlock(); return len(listing) == 1 })
	for i := range 31 {
		go func() { errs <- o.Send(context.Background(), outboxEmail(fmt.Sprintf("e%02d", i))) }()
	}
	testwait.For(t, "31 emails waiting behind the first fsync", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.next != nil && o.next.members == 31
	})
	unblock()
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if len(listing) != 2 {
		t.Fatalf("%d folder fsyncs for 32 emails, want 2 (the first, then one for the 31 behind it)", len(listing))
	}
	if !listing[0]["first.eml"] {
		t.Fatal("the first fsync started before the first email was renamed into place")
	}
	for i := range 31 {
		if name := fmt.Sprintf("e%02d.eml", i); !listing[1][name] {
			t.Fatalf("%s: its Send returned without a folder fsync after its rename", name)
		}
	}
}

// Files are written in the outbox's small .tmp folder, never left in the folder of emails;
// what a crash left there for more than an hour is cleared by the next start.
func TestOutboxTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, outboxTmp)
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	stale, fresh := filepath.Join(tmp, "stale-1"), filepath.Join(tmp, "fresh-1")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half an email"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	o, err := NewOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a file left for two hours is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a file another process may be writing was removed: %v", err)
	}
	if err := o.Send(context.Background(), outboxEmail("one")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("the outbox holds %d entries, want the email and .tmp", len(entries))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 1 {
		t.Fatalf(".tmp holds %d files, want only the fresh one", len(entries))
	}
}
