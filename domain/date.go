package domain

import (
	"encoding/json"
	"fmt"
	"time"
	_ "time/tzdata" // expiries are Rome dates on any machine, with or without a zoneinfo folder
)

// Rome is the zone every expiry is reckoned in: the service is sold in Italy, and a
// customer who orders at 00:30 on 1 March in Rome has ordered on 1 March.
var Rome = mustLoad("Europe/Rome")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// Date is a civil date (no time, no zone), the unit of every expiry. Its JSON form is
// "YYYY-MM-DD". The zero Date is "no date".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the Rome calendar date at instant t.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Rome).Date()
	return Date{y, m, d}
}

// ParseDate reads "YYYY-MM-DD" and refuses dates that do not exist.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	y, m, d := t.Date()
	return Date{y, m, d}, nil
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// Before and After compare civil dates.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }
func (d Date) After(o Date) bool  { return d.Compare(o) > 0 }

// Compare returns -1, 0 or +1.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return sign(d.Year - o.Year)
	case d.Month != o.Month:
		return sign(int(d.Month) - int(o.Month))
	default:
		return sign(d.Day - o.Day)
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// AddMonths moves d by n months. The end of a month stays the end of a month: from the last
// day of its month d goes to the last day of the target month (30 September + 6 months is
// 31 March; 28 February 2027 + 12 months is 29 February 2028). Any other day is clamped to
// the target month's length (30 January + 1 month is 28 or 29 February, and 29 February +
// 12 months is 28 February).
func (d Date) AddMonths(n int) Date {
	m := int(d.Month) - 1 + n
	y := d.Year + floorDiv(m, 12)
	m = m - floorDiv(m, 12)*12 + 1
	last := daysIn(y, time.Month(m))
	day := min(d.Day, last)
	if d.IsEndOfMonth() {
		day = last
	}
	return Date{y, time.Month(m), day}
}

// IsEndOfMonth reports whether d is the last day of its month.
func (d Date) IsEndOfMonth() bool { return !d.IsZero() && d.Day == daysIn(d.Year, d.Month) }

// AddYears is AddMonths(12*n): the anniversary, with the end of February going to the end of
// February.
func (d Date) AddYears(n int) Date { return d.AddMonths(12 * n) }

// AddDays moves d by n calendar days.
func (d Date) AddDays(n int) Date {
	y, m, day := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC).Date()
	return Date{y, m, day}
}

// DaysUntil counts calendar days from d to o (negative when o is earlier).
func (d Date) DaysUntil(o Date) int {
	a := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC)
	b := time.Date(o.Year, o.Month, o.Day, 12, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Hours() / 24)
}

// MonthsUntil counts the months from d to a later date o, a started month counting as a
// whole one: the smallest n with d.AddMonths(n) on or after o. It is 0 when o is not after d.
func (d Date) MonthsUntil(o Date) int {
	if !o.After(d) {
		return 0
	}
	n := (o.Year-d.Year)*12 + int(o.Month) - int(d.Month)
	for n > 0 && !d.AddMonths(n-1).Before(o) {
		n--
	}
	for d.AddMonths(n).Before(o) {
		n++
	}
	return n
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 12, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// MarshalJSON writes "YYYY-MM-DD", or null for the zero Date.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(d.String())
}

// UnmarshalJSON reads "YYYY-MM-DD" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("date must be a string YYYY-MM-DD")
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText and UnmarshalText let a Date be a map key.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
