package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/domain"
)

// orderd warns at start while customers would be emailed the catalogue's example IBAN and
// payment links, and stops warning once the file carries real ones.
func TestStartWarnsWhilePaymentDetailsAreTheShippedExamples(t *testing.T) {
	warnings := func(cfg Config) []string {
		core, logs := observer.New(zap.WarnLevel)
		a, err := New(context.Background(), cfg, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Shutdown(context.Background())
		var out []string
		for _, e := range logs.FilterMessageSnippet("shipped examples").All() {
			out = append(out, fmt.Sprint(e.Message, e.ContextMap()["examples"]))
		}
		return out
	}
	if w := warnings(testConfig(t.TempDir())); len(w) != 1 || !strings.Contains(w[0], "bank-transfer") {
		t.Fatalf("with the embedded catalogue: %q", w)
	}

	c := domain.DefaultCatalogue()
	for code, m := range c.PaymentMethods {
		m.IBAN, m.Beneficiary = strings.ReplaceAll(m.IBAN, "0", "1"), strings.ReplaceAll(m.Beneficiary, "S.p.A.", "S.r.l.")
		m.PaymentLink = strings.ReplaceAll(m.PaymentLink, "example.com", "acme.example")
		c.PaymentMethods[code] = m
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "catalogue.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.CatalogueFile = file
	if w := warnings(cfg); len(w) != 0 {
		t.Fatalf("with the deployment's own details: %q", w)
	}
}
