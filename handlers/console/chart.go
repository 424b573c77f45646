package console

import (
	"github.com/einvoice/spaceorders/projections"
)

// chart is the pending summary drawn as horizontal bars: the amount remaining by method,
// then by age bucket, each bar as long as its share of the largest.
type chart struct {
	Width, Height int
	LabelWidth    int
	LabelX, BarX  int
	Groups        []chartGroup
	Bars          []bar
}

type chartGroup struct {
	Title string
	Y     int
}

type bar struct {
	Label   string
	Value   string // the amount, written out
	Count   int
	Y, W    int
	TextX   int
	TextY   int
	LabelY  int
	Bucket  bool // an age bucket (drawn in the second colour)
	Percent int
}

const (
	chartWidth  = 640
	chartLabelW = 150
	chartBarMax = 330
	barHeight   = 22
	barGap      = 8
	groupGap    = 30
)

func newChart(l string, s projections.PendingSummary) chart {
	c := chart{Width: chartWidth, LabelWidth: chartLabelW, LabelX: chartLabelW - 8, BarX: chartLabelW}
	var most int64 = 1
	for _, m := range s.ByMethod {
		most = max(most, m.RemainingCents)
	}
	for _, b := range s.ByAge {
		most = max(most, b.RemainingCents)
	}
	y := 0
	add := func(label string, t projections.PendingTotals, bucket bool) {
		w := int(t.RemainingCents * chartBarMax / most)
		if t.RemainingCents > 0 {
			w = max(w, 2) // a small amount still shows
		}
		pct := 0
		if s.Total.RemainingCents > 0 {
			pct = int(t.RemainingCents * 100 / s.Total.RemainingCents)
		}
		c.Bars = append(c.Bars, bar{Label: label, Value: euros(l, t.RemainingCents), Count: t.Count, Y: y, W: w,
			TextX: chartLabelW + w + 6, TextY: y + 16, LabelY: y + 16, Bucket: bucket, Percent: pct})
		y += barHeight + barGap
	}
	c.Groups = append(c.Groups, chartGroup{Title: translate(l, "byMethod"), Y: y + 14})
	y += groupGap - 6
	for _, m := range s.ByMethod {
		add(m.Method, m.PendingTotals, false)
	}
	y += 6
	c.Groups = append(c.Groups, chartGroup{Title: translate(l, "byAge"), Y: y + 14})
	y += groupGap - 6
	for _, b := range s.ByAge {
		add(b.Bucket, b.PendingTotals, true)
	}
	c.Height = y + 4
	return c
}
