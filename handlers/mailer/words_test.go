package mailer_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"pgregory.net/rapid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"
)

// Rule 10: words agree with numbers, in Italian and English; rule 7: the email names the
// working day the payment is expected by, the day the read models show.

var wrongAgreement = regexp.MustCompile(`(^|[^0-9])1 (mesi|months|giorni|working days)\b|(^|[^0-9])([02-9]|[1-9][0-9]+) (mese|month|giorno lavorativo|working day)\b`)

func TestPropertyWordsAgreeWithNumbers(t *testing.T) {
	cat := domain.DefaultCatalogue()
	r, err := mailer.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(t *rapid.T) {
		orderDay := domain.Date{Year: 2026, Month: time.January, Day: 1}.AddDays(rapid.IntRange(0, 3*366).Draw(t, "order day"))
		// Services ending from today to a year on: 0 to 12 months charged, 1 among them.
		svcs := []domain.Service{
			{Kind: domain.KindBase, Quantity: 1, ExpiresOn: orderDay.AddDays(rapid.IntRange(0, 364).Draw(t, "base"))},
			{Kind: domain.KindUsers, Quantity: rapid.IntRange(1, 5).Draw(t, "users"), ExpiresOn: orderDay.AddMonths(rapid.IntRange(11, 12).Draw(t, "users months")).AddDays(-rapid.IntRange(0, 3).Draw(t, "days"))},
		}
		q, err := cat.Quote(svcs, rapid.IntRange(1, 3).Draw(t, "gb"), true, orderDay)
		if err != nil {
			t.Fatal(err)
		}
		lang := rapid.SampledFrom([]string{"it", "en"}).Draw(t, "language")
		method := rapid.SampledFrom(cat.MethodCodes()).Draw(t, "method")
		m, _ := cat.Method(method)
		confirmedAt := time.Date(orderDay.Year, orderDay.Month, orderDay.Day, 10, 0, 0, 0, domain.Rome)
		ev := domain.OrderConfirmed{
			OrderID: uuid.New(), SubscriptionID: uuid.New(), OwnerID: "c", Quote: q, PaymentMethod: method,
			Recipient: domain.Recipient{Name: "R", Email: "r@example.com", Language: lang}, ConfirmedAt: confirmedAt,
			PayBy: orderDay.AddDays(30), ExpectedRegistrationDays: m.RegistrationDays,
			ExpectedRegistrationOn: orderDay.AddWorkingDays(m.RegistrationDays),
		}
		c, err := r.Instructions(ev.OrderID.String(), contract[notifications.OrderConfirmedV1](t, ev))
		if err != nil {
			t.Fatal(err)
		}
		paid := domain.OrderPaid{OrderID: ev.OrderID, SubscriptionID: ev.SubscriptionID, Quote: q, Recipient: ev.Recipient,
			PaidCents: q.TotalCents, PaidAt: confirmedAt.Add(time.Duration(rapid.IntRange(0, 30*24).Draw(t, "hours to pay")) * time.Hour)}
		receipt, err := r.Receipt(paid.OrderID.String(), contract[notifications.OrderPaidV1](t, paid))
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{c.Text, c.HTML, receipt.Text, receipt.HTML} {
			if bad := wrongAgreement.FindString(text); bad != "" {
				t.Fatalf("%q in:\n%s", bad, text)
			}
		}
		// Every line's months are written as they agree.
		for _, l := range q.Lines {
			if l.Months > 0 && !strings.Contains(c.Text, mailer.Months(l.Months, lang)) {
				t.Fatalf("line %+v: %q missing in:\n%s", l, mailer.Months(l.Months, lang), c.Text)
			}
		}
		// Rule 7: the expected registration is the working day the read models show.
		if want := mailer.FormatDate(date(ev.ExpectedRegistration()), lang); !strings.Contains(c.Text, want) {
			t.Fatalf("expected registration %s missing in:\n%s", want, c.Text)
		}
		// Rule 4: the receipt's expiry is a year from the payment day.
		if want := mailer.FormatDate(date(domain.DateOf(paid.PaidAt).AddMonths(12)), lang); !strings.Contains(receipt.Text, want) {
			t.Fatalf("granted expiry %s missing in:\n%s", want, receipt.Text)
		}
	})
}

func TestCountsAgree(t *testing.T) {
	for _, c := range []struct {
		n    int
		lang string
		want string
	}{
		{1, "it", "1 mese"}, {0, "it", "0 mesi"}, {6, "it", "6 mesi"},
		{1, "en", "1 month"}, {2, "en", "2 months"}, {12, "en", "12 months"},
	} {
		if got := mailer.Months(c.n, c.lang); got != c.want {
			t.Errorf("Months(%d, %s) = %q, want %q", c.n, c.lang, got, c.want)
		}
	}
	if got := mailer.Count(1, "it", "giorno lavorativo", "giorni lavorativi", "working day", "working days"); got != "1 giorno lavorativo" {
		t.Errorf("1 working day in Italian: %q", got)
	}
}
