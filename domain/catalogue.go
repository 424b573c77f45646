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
		// PricePerGBMonthCents prices, per GB and month, earlier space still valid that
		// co-termination aligns to a new expiry. 0: the yearly price over the validity
		// months, rounded up.
		PricePerGBMonthCents int64 `json:"pricePerGBMonthCents,omitempty"`
	} `json:"space"`
	// BaseGB is the space every subscription includes.
	BaseGB int `json:"baseGB"`
	// Services are priced per unit and month, for co-termination; "base" and "users" must
	// be there, any other key is a module.
	Services map[string]ServicePrice `json:"services"`
	// PaymentTermDays is how long a confirmed order may stay unpaid before it expires.
	PaymentTermDays int                      `json:"paymentTermDays"`
	PaymentMethods  map[string]PaymentMethod `json:"paymentMethods"`
	// CartAbandonDays is how many days a cart or order form may stay untouched before the
	// sweeper ends it (0: DefaultCartAbandonDays).
	CartAbandonDays int `json:"cartAbandonDays,omitempty"`
	// MaxServiceQuantity bounds the quantity of any service (users, modules); 0:
	// DefaultMaxServiceQuantity.
	MaxServiceQuantity int `json:"maxServiceQuantity,omitempty"`
}

// Defaults of the catalogue's optional settings, and the documented maxima of figures that
// come from outside the catalogue. Every bound is well inside int64 once multiplied by the
// others, and every product of money is checked besides (see mulCents).
const (
	DefaultCartAbandonDays    = 7
	DefaultMaxServiceQuantity = 10_000
	// MaxUsedBytes is the most used space a report may state: 1 PiB.
	MaxUsedBytes int64 = 1 << 50
	// MaxAmountCents is the largest single payment, and the largest price, in cents: 10
	// billion euros.
	MaxAmountCents int64 = 1_000_000_000_000
)

// AbandonDays is the number of untouched days after which a cart or order form ends.
func (c *Catalogue) AbandonDays() int {
	if c.CartAbandonDays > 0 {
		return c.CartAbandonDays
	}
	return DefaultCartAbandonDays
}

// MaxQuantity is the largest quantity of a service.
func (c *Catalogue) MaxQuantity() int {
	if c.MaxServiceQuantity > 0 {
		return c.MaxServiceQuantity
	}
	return DefaultMaxServiceQuantity
}

// SpaceMonthlyCents is the monthly price of one GB of earlier space aligned by
// co-termination.
func (c *Catalogue) SpaceMonthlyCents() int64 {
	if c.Space.PricePerGBMonthCents > 0 {
		return c.Space.PricePerGBMonthCents
	}
	months := int64(c.Space.ValidityMonths)
	return (c.Space.PricePerGBYearCents + months - 1) / months
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
	case c.Space.PricePerGBYearCents <= 0 || c.Space.PricePerGBYearCents > MaxAmountCents:
		return fmt.Errorf("space.pricePerGBYearCents must be positive and at most %d", MaxAmountCents)
	case c.Space.PricePerGBMonthCents < 0 || c.Space.PricePerGBMonthCents > MaxAmountCents:
		return fmt.Errorf("space.pricePerGBMonthCents must be 0..%d", MaxAmountCents)
	case c.CartAbandonDays < 0:
		return fmt.Errorf("cartAbandonDays is negative")
	case c.MaxServiceQuantity < 0 || c.MaxServiceQuantity > 1_000_000:
		return fmt.Errorf("maxServiceQuantity must be 0..1000000")
	case c.Space.MaxGB > 1_000_000:
		return fmt.Errorf("space.maxGB must be at most 1000000")
	case c.Space.ValidityMonths > 120:
		return fmt.Errorf("space.validityMonths must be at most 120")
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
		if s.MonthlyCents < 0 || s.MonthlyCents > MaxAmountCents {
			return fmt.Errorf("services.%s.monthlyCents must be 0..%d", kind, MaxAmountCents)
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
