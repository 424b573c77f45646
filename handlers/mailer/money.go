package mailer

import (
	"strconv"
	"strings"

	"github.com/einvoice/spaceorders/handlers/notifications"
)

// FormatMoney writes cents as euros with two decimals the way a reader of lang expects:
// "1.234,50 €" in Italian, "€1,234.50" in English.
func FormatMoney(cents int64, lang string) string {
	neg := cents < 0
	u := uint64(cents)
	if neg {
		u = -u
	}
	whole, frac := u/100, u%100
	group, dec := ".", ","
	if lang == "en" {
		group, dec = ",", "."
	}
	digits := strconv.FormatUint(whole, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if lang == "en" {
		b.WriteString("€")
	}
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(group)
		}
		b.WriteRune(c)
	}
	b.WriteString(dec)
	if frac < 10 {
		b.WriteByte('0')
	}
	b.WriteString(strconv.FormatUint(frac, 10))
	if lang != "en" {
		b.WriteString(" €")
	}
	return b.String()
}

var monthsEN = [...]string{"", "January", "February", "March", "April", "May", "June", "July",
	"August", "September", "October", "November", "December"}

// FormatDate writes a civil date as "31/03/2027" in Italian and "31 March 2027" in English.
func FormatDate(d notifications.Date, lang string) string {
	if d.IsZero() {
		return ""
	}
	if lang == "en" {
		return strconv.Itoa(d.Day) + " " + monthsEN[d.Month] + " " + strconv.Itoa(d.Year)
	}
	return pad2(d.Day) + "/" + pad2(int(d.Month)) + "/" + strconv.Itoa(d.Year)
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// Count writes n with the noun that agrees with it, in lang: one for 1, other for any other
// number (Italian and English both use the singular for exactly one: "1 mese", "0 mesi",
// "1 month", "2 months").
func Count(n int, lang, oneIT, otherIT, oneEN, otherEN string) string {
	one, other := oneIT, otherIT
	if lang == "en" {
		one, other = oneEN, otherEN
	}
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + other
}

// Months writes a number of months in lang: "1 mese", "6 mesi", "1 month", "6 months".
func Months(n int, lang string) string {
	return Count(n, lang, "mese", "mesi", "month", "months")
}
