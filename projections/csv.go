package projections

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVRow is a view that knows its CSV header and record.
type CSVRow interface {
	CSVHeader() []string
	CSVRecord() []string
}

// WriteCSV writes rows as RFC 4180 CSV (UTF-8, header row first, CRLF line ends).
// The header is written even when there are no rows.
func WriteCSV[R CSVRow](w io.Writer, rows []R) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	var zero R
	if err := cw.Write(zero.CSVHeader()); err != nil {
		return err
	}
	for _, r := range rows {
		if err := cw.Write(r.CSVRecord()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Euros formats cents as euros with two decimals ("1234.50", "-0.05"), exactly.
func Euros(cents int64) string {
	sign := ""
	u := uint64(cents)
	if cents < 0 {
		sign, u = "-", uint64(-cents)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// text guards a free-text cell against formula injection: a spreadsheet would run a cell
// starting with = + - @ (or a tab or carriage return), so such a cell gets a leading '.
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func itoa(n int) string  { return strconv.Itoa(n) }
func i64(n int64) string { return strconv.FormatInt(n, 10) }
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	// RFC 3339 to the second: a spreadsheet reads it, and no figure depends on less.
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// CSVHeader and CSVRecord of a quota view; purchased blocks are summed (the JSON lists them).
func (QuotaView) CSVHeader() []string {
	return []string{"subscription_id", "owner_id", "holder_name", "today", "base_gb", "purchased_gb",
		"total_gb", "pending_gb", "used_bytes", "capacity_bytes", "percent_used", "warning",
		"recommended_gb", "usage_reported_at"}
}

func (v QuotaView) CSVRecord() []string {
	reported := ""
	if v.UsageReportedAt != nil {
		reported = stamp(*v.UsageReportedAt)
	}
	return []string{v.SubscriptionID.String(), text(v.OwnerID), text(v.HolderName), v.Today.String(),
		itoa(v.BaseGB), itoa(v.PurchasedGB), itoa(v.TotalGB), itoa(v.PendingGB), i64(v.UsedBytes),
		i64(v.CapacityBytes), strconv.FormatFloat(v.PercentUsed, 'f', 2, 64), v.Warning,
		itoa(v.RecommendedGB), reported}
}

func (ExpiryView) CSVHeader() []string {
	return []string{"subscription_id", "owner_id", "holder_name", "holder_email", "kind", "order_id",
		"quantity", "expires_on", "days_left", "status", "today"}
}

func (v ExpiryView) CSVRecord() []string {
	order := ""
	if v.OrderID != nil {
		order = v.OrderID.String()
	}
	return []string{v.SubscriptionID.String(), text(v.OwnerID), text(v.HolderName), text(v.HolderEmail),
		text(v.Kind), order, itoa(v.Quantity), v.ExpiresOn.String(), itoa(v.DaysLeft), v.Status, v.Today.String()}
}

func (PendingView) CSVHeader() []string {
	return []string{"order_id", "subscription_id", "owner_id", "holder_name", "holder_email", "method",
		"amount_due_eur", "amount_due_cents", "paid_eur", "paid_cents", "remaining_eur", "remaining_cents",
		"confirmed_at", "expected_registration_on", "pay_by", "age_days", "age_bucket", "status"}
}

func (v PendingView) CSVRecord() []string {
	return []string{v.OrderID.String(), v.SubscriptionID.String(), text(v.OwnerID), text(v.HolderName),
		text(v.HolderEmail), text(v.Method),
		Euros(v.AmountDueCents), i64(v.AmountDueCents), Euros(v.PaidCents), i64(v.PaidCents),
		Euros(v.RemainingCents), i64(v.RemainingCents),
		stamp(v.ConfirmedAt), v.ExpectedRegistrationOn.String(), v.PayBy.String(), itoa(v.AgeDays), v.AgeBucket, v.Status}
}

func (CreditView) CSVHeader() []string {
	return []string{"credit_id", "order_id", "subscription_id", "owner_id", "holder_name", "holder_email",
		"amount_eur", "amount_cents", "reason", "reference", "recorded_at", "age_days"}
}

func (v CreditView) CSVRecord() []string {
	return []string{v.CreditID.String(), v.OrderID.String(), v.SubscriptionID.String(), text(v.OwnerID),
		text(v.HolderName), text(v.HolderEmail), Euros(v.AmountCents), i64(v.AmountCents), v.Reason,
		text(v.Reference), stamp(v.RecordedAt), itoa(v.AgeDays)}
}

// SummaryRow is one line of the pending-payment summary's CSV: a group ("method", "age" or
// "total"), its key, and its totals.
type SummaryRow struct {
	Group string
	Key   string
	Today string
	PendingTotals
}

// Rows flattens the summary for CSV: methods, then age buckets, then the total.
func (s PendingSummary) Rows() []SummaryRow {
	today := s.Today.String()
	var out []SummaryRow
	for _, m := range s.ByMethod {
		out = append(out, SummaryRow{"method", m.Method, today, m.PendingTotals})
	}
	for _, b := range s.ByAge {
		out = append(out, SummaryRow{"age", b.Bucket, today, b.PendingTotals})
	}
	return append(out, SummaryRow{"total", "", today, s.Total})
}

func (SummaryRow) CSVHeader() []string {
	return []string{"group", "key", "today", "count", "amount_due_eur", "amount_due_cents", "paid_eur",
		"paid_cents", "remaining_eur", "remaining_cents"}
}

func (r SummaryRow) CSVRecord() []string {
	return []string{r.Group, text(r.Key), r.Today, itoa(r.Count), Euros(r.AmountDueCents), i64(r.AmountDueCents),
		Euros(r.PaidCents), i64(r.PaidCents), Euros(r.RemainingCents), i64(r.RemainingCents)}
}
