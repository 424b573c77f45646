package projections

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestEuros(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 100: "1.00", 123456: "1234.56", -5: "-0.05", -12345: "-123.45"} {
		if got := Euros(cents); got != want {
			t.Errorf("Euros(%d) = %q, want %q", cents, got, want)
		}
	}
}

// parse reads CSV back with encoding/csv and returns the rows as header-keyed maps.
func parse(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	if !utf8.Valid(b) {
		t.Fatal("CSV is not UTF-8")
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func cents(t *testing.T, row map[string]string, col string) int64 {
	t.Helper()
	c, err := strconv.ParseInt(row[col+"_cents"], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	eur, err := strconv.ParseFloat(row[col+"_eur"], 64)
	if err != nil {
		t.Fatal(err)
	}
	if Euros(c) != row[col+"_eur"] || int64(eur*100+0.5) != c {
		t.Fatalf("%s: %s euros and %d cents disagree", col, row[col+"_eur"], c)
	}
	return c
}

func TestPendingCSVParsesBackToTheSameNumbers(t *testing.T) {
	g := newGiven(t).on(subS, opened()).on(orderS, confirmed("bank-transfer", 123456, at(2025, 2, 1, 10)))
	ms, _ := pendingOrders(t, 50)
	list := append(g.ms.Pending.All(now), ms.Pending.All(now)...)
	var buf bytes.Buffer
	if err := WriteCSV(&buf, list); err != nil {
		t.Fatal(err)
	}
	rows := parse(t, buf.Bytes())
	if len(rows) != len(list) {
		t.Fatalf("%d rows, want %d", len(rows), len(list))
	}
	for i, r := range rows {
		o := list[i]
		if r["order_id"] != o.OrderID.String() || cents(t, r, "amount_due") != o.AmountDueCents ||
			cents(t, r, "paid") != o.PaidCents || cents(t, r, "remaining") != o.RemainingCents || r["age_days"] != strconv.Itoa(o.AgeDays) {
			t.Fatalf("row %d: %v, view %+v", i, r, o)
		}
	}
	// The holder "@Holder" would be a formula in a spreadsheet: it is quoted.
	if rows[0]["holder_name"] != "'@Holder" || rows[0]["amount_due_eur"] != "1234.56" {
		t.Fatalf("first row: %v", rows[0])
	}

	// The summary's CSV parses back to the summary, and its groups add up.
	s := ms.Pending.Summary(now)
	buf.Reset()
	if err := WriteCSV(&buf, s.Rows()); err != nil {
		t.Fatal(err)
	}
	sum := map[string]int64{}
	for _, r := range parse(t, buf.Bytes()) {
		sum[r["group"]] += cents(t, r, "remaining")
	}
	if sum["method"] != s.Total.RemainingCents || sum["age"] != s.Total.RemainingCents || sum["total"] != s.Total.RemainingCents {
		t.Fatalf("summary CSV sums %v, total %d", sum, s.Total.RemainingCents)
	}
}

func TestQuotaAndExpiryCSVGuardFormulas(t *testing.T) {
	g := newGiven(t).on(subS, opened())
	for name, write := range map[string]func(*bytes.Buffer) error{
		"quota":  func(b *bytes.Buffer) error { return WriteCSV(b, g.ms.Quota.All(now)) },
		"expiry": func(b *bytes.Buffer) error { return WriteCSV(b, g.ms.Expiry.All(now)) },
	} {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		rows := parse(t, buf.Bytes())
		if len(rows) == 0 || rows[0]["holder_name"] != "'"+opened().Holder.Name || rows[0]["subscription_id"] != subID.String() {
			t.Fatalf("%s: %v", name, rows)
		}
	}
	// No rows still gives the header.
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []PendingView{}); err != nil || buf.String() == "" {
		t.Fatalf("empty CSV: %q %v", buf.String(), err)
	}
}
