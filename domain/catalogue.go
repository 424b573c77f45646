package domain

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Catalogue holds every price, rate and payment method: the money lives here, not in code.
// It is read from a JSON file; DefaultCatalogue is the one embedded in the binary.
type Catalogue struct {
	Currency   string `json:"currency"`
	VATPercent int64  `json:"vatPercent"`
	Space      struct {
		PricePerGBYearCents int64 `json:"pricePerGBYearCents"`
		MinGB               int   `json:"minGB"`
		MaxGB               int   `json:"maxGB"`
		ValidityMonths      int   `json:"validityMonths"`
	} `json:"space"`
	// BaseGB is the space every subscription includes.
	BaseGB int `json:"baseGB"`
	// Services are priced per unit and month, for co-termination; "base" and "users" must
	// be there, any other key is a module.
	Services map[string]ServicePrice `json:"services"`
	// PaymentTermDays is how long a confirmed order may stay unpaid before it expires.
	PaymentTermDays int                      `json:"paymentTermDays"`
	PaymentMethods  map[string]PaymentMethod `json:"paymentMethods"`
}

// ServicePrice is the monthly price of one unit of a service kind.
type ServicePrice struct {
	MonthlyCents int64             `json:"monthlyCents"`
	Label        map[string]string `json:"label"`
}

// PaymentMethod says how a customer pays and how long the payment takes to be registered.
type PaymentMethod struct {
	Label            map[string]string `json:"label"`
	RegistrationDays int               `json:"registrationDays"`
	Instructions     map[string]string `json:"instructions"`
	// PaymentLink, for card and PayPal, with {order} standing for the order id.
	PaymentLink string `json:"paymentLink,omitempty"`
	// Beneficiary and IBAN, for bank transfer.
	Beneficiary string `json:"beneficiary,omitempty"`
	IBAN        string `json:"iban,omitempty"`
}

// Service kinds that outside scripts rely on; modules have names of their own.
const (
	KindBase  = "base"
	KindUsers = "users"
	// KindSpace is the quote line of the extra space itself.
	KindSpace = "space"
)

// Payment method codes that outside scripts rely on.
const (
	MethodCard         = "card"
	MethodPayPal       = "paypal"
	MethodBankTransfer = "bank-transfer"
)

// Languages the holder can be written to in.
var Languages = []string{"it", "en"}

//go:embed catalogue.json
var defaultCatalogue []byte

// DefaultCatalogue returns the catalogue embedded in the binary.
func DefaultCatalogue() *Catalogue {
	c, err := ParseCatalogue(defaultCatalogue)
	if err != nil {
		panic("embedded catalogue: " + err.Error())
	}
	return c
}

// DefaultCatalogueJSON is the embedded catalogue's text, a starting point for a custom file.
func DefaultCatalogueJSON() []byte { return bytes.Clone(defaultCatalogue) }

// ParseCatalogue reads a catalogue and checks it, naming the first field that is wrong.
func ParseCatalogue(b []byte) (*Catalogue, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Catalogue
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("catalogue: %w", err)
	}
	return &c, nil
}

func (c *Catalogue) validate() error {
	switch {
	case c.Currency == "":
		return fmt.Errorf("currency is empty")
	case c.VATPercent < 0 || c.VATPercent > 100:
		return fmt.Errorf("vatPercent %d is not in 0..100", c.VATPercent)
	case c.Space.PricePerGBYearCents <= 0:
		return fmt.Errorf("space.pricePerGBYearCents must be positive")
	case c.Space.MinGB < 1 || c.Space.MaxGB < c.Space.MinGB:
		return fmt.Errorf("space.minGB..maxGB %d..%d is not a range of at least 1", c.Space.MinGB, c.Space.MaxGB)
	case c.Space.ValidityMonths < 1:
		return fmt.Errorf("space.validityMonths must be at least 1")
	case c.BaseGB < 0:
		return fmt.Errorf("baseGB is negative")
	case c.PaymentTermDays < 1:
		return fmt.Errorf("paymentTermDays must be at least 1")
	case len(c.PaymentMethods) == 0:
		return fmt.Errorf("paymentMethods is empty")
	}
	for _, kind := range []string{KindBase, KindUsers} {
		if _, ok := c.Services[kind]; !ok {
			return fmt.Errorf("services.%s is missing", kind)
		}
	}
	for kind, s := range c.Services {
		if kind == KindSpace || strings.TrimSpace(kind) != kind || kind == "" {
			return fmt.Errorf("services: %q cannot name a service kind", kind)
		}
		if s.MonthlyCents < 0 {
			return fmt.Errorf("services.%s.monthlyCents is negative", kind)
		}
	}
	for code, m := range c.PaymentMethods {
		if m.RegistrationDays < 0 {
			return fmt.Errorf("paymentMethods.%s.registrationDays is negative", code)
		}
		for _, lang := range Languages {
			if m.Label[lang] == "" || m.Instructions[lang] == "" {
				return fmt.Errorf("paymentMethods.%s needs a label and instructions in %q", code, lang)
			}
		}
	}
	return nil
}

// Method returns the payment method with that code.
func (c *Catalogue) Method(code string) (PaymentMethod, bool) {
	m, ok := c.PaymentMethods[code]
	return m, ok
}

// MethodCodes lists the payment method codes, sorted.
func (c *Catalogue) MethodCodes() []string {
	codes := make([]string, 0, len(c.PaymentMethods))
	for code := range c.PaymentMethods {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	return codes
}
