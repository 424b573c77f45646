package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/domain"
)

func line(q domain.Quote, kind string) (domain.QuoteLine, bool) {
	for _, l := range q.Lines {
		if l.Kind == kind {
			return l, true
		}
	}
	return domain.QuoteLine{}, false
}

// Co-termination: every service active at the order date whose expiry is before the new
// expiry is extended to it, each started month charged.

func TestTheDefaultQuoteOfTheStory(t *testing.T) {
	q := mustQuote(t, services(), 1, true, today)
	want := domain.Quote{
		OrderDate: today, NewExpiry: yearOn, CoTermination: true, GB: 1,
		Lines: []domain.QuoteLine{
			{Kind: domain.KindSpace, Quantity: 1, Months: 12, UnitCents: 2500, NetCents: 2500, NewExpiry: yearOn},
			{Kind: domain.KindBase, Quantity: 1, Months: 6, UnitCents: 250, NetCents: 1500, OldExpiry: date("2026-09-30"), NewExpiry: yearOn},
			{Kind: domain.KindUsers, Quantity: 3, Months: 10, UnitCents: 100, NetCents: 3000, OldExpiry: date("2026-06-10"), NewExpiry: yearOn},
		},
		NetCents: 7000, VATPercent: 22, VATCents: 1540, TotalCents: 8540, Currency: "EUR",
	}
	if !equalQuotes(q, want) {
		t.Fatalf("quote\n got %+v\nwant %+v", q, want)
	}
}

func equalQuotes(a, b domain.Quote) bool { return reflect.DeepEqual(a, b) }

func TestCoTerminationExtendsEveryActiveServiceInTheQuote(t *testing.T) {
	q := mustQuote(t, services(), 1, true, today)
	for _, kind := range []string{domain.KindBase, domain.KindUsers} {
		l, ok := line(q, kind)
		if !ok || l.NewExpiry != q.NewExpiry {
			t.Errorf("%s: %+v, want it extended to %s", kind, l, q.NewExpiry)
		}
	}
	// A service expiring on the order date is still active on it.
	q = mustQuote(t, []domain.Service{{Kind: domain.KindBase, Quantity: 1, ExpiresOn: today}}, 1, true, today)
	if l, ok := line(q, domain.KindBase); !ok || l.Months != 12 || l.NetCents != 12*250 {
		t.Errorf("base expiring on the order date: %+v, want 12 months charged", l)
	}
}

func TestCoTerminationChargesEveryStartedMonth(t *testing.T) {
	for _, c := range []struct {
		oldExpiry string
		months    int
	}{
		{"2026-09-15", 6}, // exactly six months before the new expiry
		{"2026-09-16", 6}, // a day less than six months
		{"2026-09-14", 7}, // six months and a day: the started seventh is charged
		{"2027-03-14", 1}, // a single day
		{"2027-02-15", 1},
		{"2026-03-15", 12}, // expiring on the order date
		{"2026-03-31", 12},
	} {
		svcs := []domain.Service{{Kind: domain.KindUsers, Quantity: 2, ExpiresOn: date(c.oldExpiry)}}
		l, ok := line(mustQuote(t, svcs, 1, true, today), domain.KindUsers)
		if !ok || l.Months != c.months || l.NetCents != int64(2*c.months*100) || l.OldExpiry != date(c.oldExpiry) {
			t.Errorf("users expiring %s: %+v, want %d months for 2 users at 100 cents", c.oldExpiry, l, c.months)
		}
	}
}

func TestExpiredServicesAreNotExtended(t *testing.T) {
	svcs := []domain.Service{
		{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date("2026-09-30")},
		{Kind: "reports", Quantity: 1, ExpiresOn: date("2026-03-14")}, // expired yesterday
	}
	if l, ok := line(mustQuote(t, svcs, 1, true, today), "reports"); ok {
		t.Fatalf("expired module priced: %+v", l)
	}
}

func TestServicesPastTheNewExpiryAreNotTouched(t *testing.T) {
	for _, exp := range []string{"2027-03-15", "2027-03-16", "2030-01-01"} {
		svcs := []domain.Service{
			{Kind: domain.KindBase, Quantity: 1, ExpiresOn: date(exp)},
			{Kind: "conservation", Quantity: 1, ExpiresOn: date(exp)},
		}
		q := mustQuote(t, svcs, 1, true, today)
		if len(q.Lines) != 1 || q.NetCents != 2500 {
			t.Errorf("services expiring %s: %+v, want only the space", exp, q.Lines)
		}
	}
}

func TestWithCoTerminationOffOnlyTheSpaceIsPriced(t *testing.T) {
	q := mustQuote(t, services(), 2, false, today)
	if len(q.Lines) != 1 || q.Lines[0].Kind != domain.KindSpace || q.CoTermination {
		t.Fatalf("lines %+v: want only the space", q.Lines)
	}
	if q.NetCents != 5000 || q.VATCents != 1100 || q.TotalCents != 6100 || len(q.ExtendedServices()) != 0 {
		t.Fatalf("2 GB without co-termination: %+v, want 5000 + 1100 = 6100", q)
	}
}

func TestCoTerminationRefusesAServiceMissingFromTheCatalogue(t *testing.T) {
	svcs := []domain.Service{{Kind: "teleport", Quantity: 1, ExpiresOn: date("2026-06-01")}}
	if _, err := cat.Quote(svcs, 1, true, today); !isRefusal(err, domain.ErrUnknownServiceKind) {
		t.Fatalf("got %v, want %v", err, domain.ErrUnknownServiceKind)
	}
	if _, err := cat.Quote(svcs, 1, false, today); err != nil {
		t.Fatalf("without co-termination the service is not priced: %v", err)
	}
}

func TestSpacePricedPerGB(t *testing.T) {
	for _, gb := range []int{1, 2, 37, 100} {
		q := mustQuote(t, nil, gb, false, today)
		if q.Lines[0].Quantity != gb || q.NetCents != int64(gb)*2500 || !q.Adds() {
			t.Errorf("%d GB: %+v", gb, q)
		}
	}
}

// Money is integer cents with VAT (22 %) and one documented rounding rule.

func TestVATIsTakenOnceOnTheNetTotalHalfUp(t *testing.T) {
	for _, c := range []struct{ net, vat int64 }{
		{0, 0},
		{1, 0},      // 0.22
		{2, 0},      // 0.44
		{3, 1},      // 0.66
		{25, 6},     // 5.5: half goes up
		{75, 17},    // 16.5
		{125, 28},   // 27.5
		{24, 5},     // 5.28
		{26, 6},     // 5.72
		{2500, 550}, // exact
		{7000, 1540},
		{9999, 2200}, // 2199.78
		{1_000_000_00, 22_000_000},
	} {
		if got := domain.VATCents(c.net, 22); got != c.vat {
			t.Errorf("VAT on %d cents: %d, want %d", c.net, got, c.vat)
		}
	}
	for _, c := range []struct{ net, pct, vat int64 }{
		{10, 5, 1},  // 0.5 goes up
		{30, 5, 2},  // 1.5 goes up
		{9, 5, 0},   // 0.45 goes down
		{100, 0, 0}, // no VAT
		{333, 100, 333},
	} {
		if got := domain.VATCents(c.net, c.pct); got != c.vat {
			t.Errorf("VAT %d%% on %d cents: %d, want %d", c.pct, c.net, got, c.vat)
		}
	}
}

func TestVATIsNotTakenPerLine(t *testing.T) {
	// Three lines of 25 cents each: per line, half up would be 6+6+6 = 18; on the net of 75
	// it is 16.5, so 17.
	q := domain.Quote{
		Lines:    []domain.QuoteLine{{NetCents: 25}, {NetCents: 25}, {NetCents: 25}},
		NetCents: 75, VATPercent: 22, VATCents: 17, TotalCents: 92,
	}
	if !q.Adds() {
		t.Fatal("VAT on the net total does not add up")
	}
	q.VATCents, q.TotalCents = 18, 93
	if q.Adds() {
		t.Fatal("VAT rounded per line should not add up")
	}
}

func TestAQuoteThatDoesNotAddUpIsCaught(t *testing.T) {
	good := mustQuote(t, services(), 1, true, today)
	for name, spoil := range map[string]func(*domain.Quote){
		"net":   func(q *domain.Quote) { q.NetCents++ },
		"vat":   func(q *domain.Quote) { q.VATCents++ },
		"total": func(q *domain.Quote) { q.TotalCents-- },
		"line":  func(q *domain.Quote) { q.Lines[1].NetCents++ },
	} {
		q := good
		q.Lines = append([]domain.QuoteLine(nil), good.Lines...)
		spoil(&q)
		if q.Adds() {
			t.Errorf("a spoilt %s adds up", name)
		}
	}
	if !good.Adds() {
		t.Fatal("the good quote does not add up")
	}
}

// Dates that are expiries are civil dates in Europe/Rome.

func TestMonthsUntilCountsAStartedMonth(t *testing.T) {
	for _, c := range []struct {
		from, to string
		months   int
	}{
		{"2026-03-15", "2026-03-15", 0}, // same day
		{"2026-03-15", "2026-03-14", 0}, // earlier
		{"2026-03-15", "2026-03-16", 1}, // one day
		{"2026-03-15", "2026-04-15", 1}, // one month exactly
		{"2026-03-15", "2026-04-16", 2}, // one day over
		{"2027-01-31", "2027-02-28", 1}, // 31 Jan + 1 month is 28 Feb
		{"2027-01-31", "2027-03-01", 2},
		{"2028-01-31", "2028-02-29", 1}, // leap year
		{"2028-01-31", "2028-02-28", 1},
		{"2026-03-15", "2027-03-15", 12},
		{"2026-03-15", "2027-03-16", 13},
		{"2026-12-31", "2027-01-01", 1},
		{"2026-09-30", "2027-03-15", 6},
		{"2026-06-10", "2027-03-15", 10},
		{"2025-03-15", "2027-03-15", 24},
	} {
		if got := date(c.from).MonthsUntil(date(c.to)); got != c.months {
			t.Errorf("months from %s to %s: %d, want %d", c.from, c.to, got, c.months)
		}
	}
}

func TestAddMonthsClampsToTheEndOfTheMonth(t *testing.T) {
	for _, c := range []struct {
		from   string
		months int
		to     string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2028-01-31", 1, "2028-02-29"},
		{"2028-02-29", 12, "2029-02-28"},
		{"2028-02-29", 48, "2032-02-29"},
		{"2026-03-31", -1, "2026-02-28"},
		{"2026-01-15", -1, "2025-12-15"},
		{"2026-12-15", 1, "2027-01-15"},
		{"2026-03-15", -15, "2024-12-15"},
	} {
		if got := date(c.from).AddMonths(c.months); got != date(c.to) {
			t.Errorf("%s + %d months: %s, want %s", c.from, c.months, got, c.to)
		}
	}
	if got := date("2028-02-29").AddYears(1); got != date("2029-02-28") {
		t.Errorf("29 February + 1 year: %s", got)
	}
}

func TestDateOfIsTheRomeCalendarDate(t *testing.T) {
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC), "2027-01-01"}, // winter, UTC+1
		{time.Date(2026, 12, 31, 22, 59, 0, 0, time.UTC), "2026-12-31"},
		{time.Date(2026, 6, 30, 22, 30, 0, 0, time.UTC), "2026-07-01"}, // summer, UTC+2
		{time.Date(2026, 6, 30, 21, 59, 0, 0, time.UTC), "2026-06-30"},
		{time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC), "2026-03-29"}, // the night clocks go forward
	} {
		if got := domain.DateOf(c.at); got != date(c.want) {
			t.Errorf("DateOf(%s) = %s, want %s", c.at, got, c.want)
		}
	}
}

func TestDaysArithmetic(t *testing.T) {
	if got := date("2026-03-15").AddDays(30); got != date("2026-04-14") {
		t.Errorf("15 March + 30 days: %s", got)
	}
	if got := date("2026-03-28").DaysUntil(date("2026-03-30")); got != 2 { // across the DST change
		t.Errorf("days 28 to 30 March: %d", got)
	}
	if got := date("2026-04-14").DaysUntil(date("2026-03-15")); got != -30 {
		t.Errorf("days backwards: %d", got)
	}
}

func TestParseDateRefusesDatesThatDoNotExist(t *testing.T) {
	for _, s := range []string{"2026-02-29", "2026-13-01", "2026-04-31", "26-03-15", "2026-3-15", "", "2026-03-15T10:00:00Z"} {
		if _, err := domain.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
}

func TestDateJSONIsYearMonthDay(t *testing.T) {
	b, err := date("2028-02-29").MarshalJSON()
	if err != nil || string(b) != `"2028-02-29"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var d domain.Date
	if err := d.UnmarshalJSON([]byte(`"2028-02-29"`)); err != nil || d != date("2028-02-29") {
		t.Fatalf("unmarshal: %s %v", d, err)
	}
	if b, _ := (domain.Date{}).MarshalJSON(); string(b) != "null" {
		t.Fatalf("zero date: %s", b)
	}
	for _, bad := range []string{`"2026-02-30"`, `20260301`, `"yesterday"`} {
		if err := d.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("unmarshal %s accepted", bad)
		}
	}
}
