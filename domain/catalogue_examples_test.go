package domain_test

import (
	"slices"
	"testing"

	"github.com/einvoice/spaceorders/domain"
)

func TestShippedPaymentDetailsAreNamedUntilReplaced(t *testing.T) {
	c := domain.DefaultCatalogue()
	want := []string{"bank-transfer beneficiary", "bank-transfer iban", "card paymentLink", "paypal paymentLink"}
	if got := c.ShippedPaymentDetails(); !slices.Equal(got, want) {
		t.Fatalf("the embedded catalogue's examples: %v, want %v", got, want)
	}
	bank := c.PaymentMethods["bank-transfer"]
	bank.IBAN, bank.Beneficiary = "IT02L1234512345123456789012", "Acme S.p.A."
	c.PaymentMethods["bank-transfer"] = bank
	card := c.PaymentMethods["card"]
	card.PaymentLink = "https://pay.acme.example/{order}"
	c.PaymentMethods["card"] = card
	if got := c.ShippedPaymentDetails(); !slices.Equal(got, []string{"paypal paymentLink"}) {
		t.Fatalf("after replacing all but PayPal's link: %v", got)
	}
}
