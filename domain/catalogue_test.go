package domain_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/domain"
)

// Prices, VAT, payment methods come from a catalogue file with sensible defaults.

func TestCatalogueFromJSON(t *testing.T) {
	c, err := domain.ParseCatalogue(domain.DefaultCatalogueJSON())
	if err != nil {
		t.Fatal(err)
	}
	if c.Currency != "EUR" || c.VATPercent != 22 || c.BaseGB != 1 || c.Space.MinGB != 1 || c.Space.MaxGB != 100 ||
		c.Space.ValidityMonths != 12 || c.Space.PricePerGBYearCents <= 0 || c.PaymentTermDays < 1 {
		t.Fatalf("default catalogue %+v", c)
	}
	if got := strings.Join(c.MethodCodes(), ","); got != "bank-transfer,card,paypal" {
		t.Fatalf("payment methods %s, want bank-transfer, card, paypal", got)
	}
	for _, code := range c.MethodCodes() {
		m, ok := c.Method(code)
		for _, lang := range domain.Languages {
			if !ok || m.Label[lang] == "" || m.Instructions[lang] == "" {
				t.Errorf("%s lacks a label or instructions in %s", code, lang)
			}
		}
	}
	if m, _ := c.Method(domain.MethodBankTransfer); m.IBAN == "" || m.Beneficiary == "" {
		t.Errorf("bank transfer without beneficiary and IBAN")
	}
	for _, kind := range []string{domain.KindBase, domain.KindUsers, "conservation", "reports"} {
		if _, ok := c.Services[kind]; !ok {
			t.Errorf("service %s missing", kind)
		}
	}
	if _, ok := c.Method("cash"); ok {
		t.Errorf("cash is not a payment method")
	}
}

func TestCatalogueFromACustomFile(t *testing.T) {
	c, err := domain.ParseCatalogue(editCatalogue(t, func(m map[string]any) {
		m["vatPercent"] = 10
		m["space"].(map[string]any)["pricePerGBYearCents"] = 1000
	}))
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Quote(nil, 3, false, today)
	if err != nil || q.NetCents != 3000 || q.VATCents != 300 || q.TotalCents != 3300 {
		t.Fatalf("quote from a custom catalogue: %+v %v", q, err)
	}
}

// editCatalogue returns the default catalogue's JSON changed by edit.
func editCatalogue(t *testing.T, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(domain.DefaultCatalogueJSON(), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCatalogueRefusesMistakesNamingTheField(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"unknown field", func(m map[string]any) { m["vatPercentage"] = 22 }, "vatPercentage"},
		{"unknown nested field", func(m map[string]any) { m["space"].(map[string]any)["priceCents"] = 1 }, "priceCents"},
		{"missing base", func(m map[string]any) { delete(m["services"].(map[string]any), "base") }, "services.base"},
		{"missing users", func(m map[string]any) { delete(m["services"].(map[string]any), "users") }, "services.users"},
		{"negative VAT", func(m map[string]any) { m["vatPercent"] = -1 }, "vatPercent"},
		{"VAT over 100", func(m map[string]any) { m["vatPercent"] = 122 }, "vatPercent"},
		{"fractional VAT", func(m map[string]any) { m["vatPercent"] = 22.5 }, "vatPercent"},
		{"VAT as text", func(m map[string]any) { m["vatPercent"] = "22" }, "vatPercent"},
		{"no currency", func(m map[string]any) { m["currency"] = "" }, "currency"},
		{"free space", func(m map[string]any) { m["space"].(map[string]any)["pricePerGBYearCents"] = 0 }, "space.pricePerGBYearCents"},
		{"empty GB range", func(m map[string]any) { m["space"].(map[string]any)["maxGB"] = 0 }, "space.minGB..maxGB"},
		{"no validity", func(m map[string]any) { m["space"].(map[string]any)["validityMonths"] = 0 }, "space.validityMonths"},
		{"negative base GB", func(m map[string]any) { m["baseGB"] = -1 }, "baseGB"},
		{"no payment term", func(m map[string]any) { m["paymentTermDays"] = 0 }, "paymentTermDays"},
		{"no payment methods", func(m map[string]any) { m["paymentMethods"] = map[string]any{} }, "paymentMethods"},
		{"negative service price", func(m map[string]any) {
			m["services"].(map[string]any)["users"].(map[string]any)["monthlyCents"] = -1
		}, "services.users.monthlyCents"},
		{"a service named space", func(m map[string]any) {
			m["services"].(map[string]any)["space"] = map[string]any{"monthlyCents": 1}
		}, `"space"`},
		{"method without English", func(m map[string]any) {
			delete(m["paymentMethods"].(map[string]any)["card"].(map[string]any)["instructions"].(map[string]any), "en")
		}, "paymentMethods.card"},
		{"negative abandon days", func(m map[string]any) { m["cartAbandonDays"] = -1 }, "cartAbandonDays"},
		{"service quantities beyond a million", func(m map[string]any) { m["maxServiceQuantity"] = 2_000_000 }, "maxServiceQuantity"},
		{"a price that could wrap", func(m map[string]any) {
			m["space"].(map[string]any)["pricePerGBYearCents"] = int64(1) << 60
		}, "space.pricePerGBYearCents"},
		{"negative monthly space price", func(m map[string]any) {
			m["space"].(map[string]any)["pricePerGBMonthCents"] = -1
		}, "space.pricePerGBMonthCents"},
		{"negative registration days", func(m map[string]any) {
			m["paymentMethods"].(map[string]any)["paypal"].(map[string]any)["registrationDays"] = -1
		}, "paymentMethods.paypal.registrationDays"},
	} {
		_, err := domain.ParseCatalogue(editCatalogue(t, c.edit))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %q does not name %s", c.name, err, c.field)
		}
	}
	for _, bad := range []string{"", "{", "[]", "null trailing"} {
		if _, err := domain.ParseCatalogue([]byte(bad)); err == nil {
			t.Errorf("catalogue %q accepted", bad)
		}
	}
}

func TestDefaultCatalogueJSONIsACopy(t *testing.T) {
	b := domain.DefaultCatalogueJSON()
	for i := range b {
		b[i] = 'x'
	}
	if _, err := domain.ParseCatalogue(domain.DefaultCatalogueJSON()); err != nil {
		t.Fatalf("changing the returned text changed the embedded default: %v", err)
	}
}

// The calendar settings have defaults when a custom catalogue leaves them out.
func TestCatalogueCalendarDefaults(t *testing.T) {
	c, err := domain.ParseCatalogue(editCatalogue(t, func(m map[string]any) {
		delete(m, "cartAbandonDays")
		delete(m, "maxServiceQuantity")
		delete(m["space"].(map[string]any), "pricePerGBMonthCents")
	}))
	if err != nil {
		t.Fatal(err)
	}
	// 25.00 EUR a year over 12 months, rounded up: 2.09 EUR a month.
	if c.AbandonDays() != 7 || c.MaxQuantity() != 10_000 || c.SpaceMonthlyCents() != 209 {
		t.Fatalf("defaults: %d days, %d units, %d cents", c.AbandonDays(), c.MaxQuantity(), c.SpaceMonthlyCents())
	}
	d := domain.DefaultCatalogue()
	if d.AbandonDays() != 7 || d.SpaceMonthlyCents() != 250 {
		t.Fatalf("embedded: %d days, %d cents", d.AbandonDays(), d.SpaceMonthlyCents())
	}
}
