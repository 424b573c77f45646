package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBarShowsPercentEventsAndRate(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	b := newBar(&buf, "export", func() time.Time { return now })
	b.Start(1000)
	now = now.Add(2 * time.Second)
	b.Advance(500, 20000)
	b.Done()
	out := buf.String()
	for _, want := range []string{"export [", " 50%", "20,000 events", "10,000 ev/s", "\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("bar %q lacks %q", out, want)
		}
	}
	if thousands(1234567) != "1,234,567" || thousands(12) != "12" {
		t.Fatal(thousands(1234567))
	}
}
