package mailer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/mailer"
	"github.com/einvoice/spaceorders/handlers/notifications"
)

func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		cents  int64
		it, en string
	}{
		{0, "0,00 €", "€0.00"},
		{5, "0,05 €", "€0.05"},
		{1250, "12,50 €", "€12.50"},
		{100000, "1.000,00 €", "€1,000.00"},
		{123456789, "1.234.567,89 €", "€1,234,567.89"},
		{-1250, "-12,50 €", "-€12.50"},
	} {
		if got := mailer.FormatMoney(c.cents, "it"); got != c.it {
			t.Errorf("FormatMoney(%d, it) = %q, want %q", c.cents, got, c.it)
		}
		if got := mailer.FormatMoney(c.cents, "en"); got != c.en {
			t.Errorf("FormatMoney(%d, en) = %q, want %q", c.cents, got, c.en)
		}
	}
}

func TestFormatDate(t *testing.T) {
	d := notifications.Date{Year: 2027, Month: time.March, Day: 9}
	if got := mailer.FormatDate(d, "it"); got != "09/03/2027" {
		t.Errorf("it: %q", got)
	}
	if got := mailer.FormatDate(d, "en"); got != "9 March 2027" {
		t.Errorf("en: %q", got)
	}
}

func TestRenderEscapesHolderNameInHTML(t *testing.T) {
	r, err := mailer.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	ev := confirmed(t, domain.DefaultCatalogue(), `<script>alert("x")</script> & Co`, "a@example.com", "it", "card")
	c, err := r.Instructions(ev.OrderID.String(), contract[notifications.OrderConfirmedV1](t, ev))
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "html", c.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co")
	if strings.Contains(c.HTML, "<script>") {
		t.Fatalf("HTML part carries the raw name:\n%s", c.HTML)
	}
	contains(t, "text", c.Text, `<script>alert("x")</script> & Co`)
	t.Logf("subject %q\n%s", c.Subject, c.Text)
}
