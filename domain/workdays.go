package domain

import "time"

// Working days are what banks count in: a bank transfer is registered within so many
// working days, and the email must name the same day the books will.

// IsItalianHoliday reports whether d is an Italian national holiday: New Year, Epiphany,
// Easter Monday, Liberation Day (25 April), Labour Day (1 May), Republic Day (2 June),
// Assumption (15 August), St Francis of Assisi (4 October, a national holiday again from
// 2026, law 151/2025), All Saints (1 November), Immaculate Conception (8 December),
// Christmas and St Stephen's Day. Easter Sunday is always a Sunday, so never a working day.
func IsItalianHoliday(d Date) bool {
	switch {
	case d.Month == time.January && (d.Day == 1 || d.Day == 6),
		d.Month == time.April && d.Day == 25,
		d.Month == time.May && d.Day == 1,
		d.Month == time.June && d.Day == 2,
		d.Month == time.August && d.Day == 15,
		d.Month == time.October && d.Day == 4 && d.Year >= 2026,
		d.Month == time.November && d.Day == 1,
		d.Month == time.December && (d.Day == 8 || d.Day == 25 || d.Day == 26):
		return true
	}
	return d == EasterSunday(d.Year).AddDays(1)
}

// IsWorkingDay reports whether d is Monday to Friday and not an Italian national holiday.
func IsWorkingDay(d Date) bool {
	wd := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
	return wd != time.Saturday && wd != time.Sunday && !IsItalianHoliday(d)
}

// AddWorkingDays is the n-th working day after d; d itself when n is 0 (a payment that is
// registered at once is registered the day it is made).
func (d Date) AddWorkingDays(n int) Date {
	for n > 0 {
		d = d.AddDays(1)
		if IsWorkingDay(d) {
			n--
		}
	}
	return d
}

// EasterSunday is the Gregorian Easter Sunday of year y (the anonymous Gregorian algorithm,
// Meeus/Jones/Butcher).
func EasterSunday(y int) Date {
	a := y % 19
	b, c := y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return Date{y, time.Month(month), day}
}
