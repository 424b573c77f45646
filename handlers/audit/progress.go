package audit

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress hears how a long read of the log advances.
type Progress interface {
	// Start is called once with the position the read goes up to.
	Start(head uint64)
	// Advance is called after each page: the page's last position and its event count.
	Advance(position uint64, events int)
	// Done is called once at the end, whether the read succeeded or not.
	Done()
}

// NoProgress reports nothing.
type NoProgress struct{}

func (NoProgress) Start(uint64)        {}
func (NoProgress) Advance(uint64, int) {}
func (NoProgress) Done()               {}

// IsTerminal reports whether w is a character device such as a terminal, the only place
// a progress bar belongs: piped or redirected output stays clean.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && f.Name() != os.DevNull
}

// NewBar returns a progress bar with events/s written to w, or NoProgress when w is not a
// terminal.
func NewBar(w io.Writer, label string) Progress {
	if !IsTerminal(w) {
		return NoProgress{}
	}
	return newBar(w, label, time.Now)
}

// Bar draws "label [=====>    ]  42%  123,456 events  56,789 ev/s" on one line, redrawn
// at most every 200 ms.
type Bar struct {
	w     io.Writer
	label string
	now   func() time.Time

	mu     sync.Mutex
	head   uint64
	pos    uint64
	events uint64
	start  time.Time
	drawn  time.Time
}

func newBar(w io.Writer, label string, now func() time.Time) *Bar {
	return &Bar{w: w, label: label, now: now}
}

func (b *Bar) Start(head uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.head, b.start = head, b.now()
}

func (b *Bar) Advance(position uint64, events int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pos = position
	b.events += uint64(events)
	if t := b.now(); t.Sub(b.drawn) >= 200*time.Millisecond {
		b.drawn = t
		b.draw(t)
	}
}

func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(b.now())
	fmt.Fprintln(b.w)
}

func (b *Bar) draw(t time.Time) {
	const width = 30
	frac := 1.0
	if b.head > 0 {
		frac = min(float64(b.pos)/float64(b.head), 1)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	rate := 0.0
	if el := t.Sub(b.start).Seconds(); el > 0 {
		rate = float64(b.events) / el
	}
	fmt.Fprintf(b.w, "\r%s [%s] %3.0f%%  %s events  %s ev/s ", b.label, bar, frac*100, thousands(b.events), thousands(uint64(rate)))
}

// thousands writes n with comma separators: 1234567 -> "1,234,567".
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
