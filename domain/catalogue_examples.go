package domain

import "sort"

// ShippedPaymentDetails lists the payment details of c that are still the embedded
// catalogue's examples ("bank-transfer iban", "card paymentLink", ...), so that a
// deployment can say so at start instead of emailing customers an example IBAN.
func (c *Catalogue) ShippedPaymentDetails() []string {
	shipped := DefaultCatalogue().PaymentMethods
	var same []string
	for code, m := range c.PaymentMethods {
		ex, ok := shipped[code]
		if !ok {
			continue
		}
		for field, pair := range map[string][2]string{
			"iban":        {m.IBAN, ex.IBAN},
			"beneficiary": {m.Beneficiary, ex.Beneficiary},
			"paymentLink": {m.PaymentLink, ex.PaymentLink},
		} {
			if pair[0] != "" && pair[0] == pair[1] {
				same = append(same, code+" "+field)
			}
		}
	}
	sort.Strings(same)
	return same
}
