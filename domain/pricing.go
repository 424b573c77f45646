package domain

import "fmt"

// Quote is the priced order: what the customer sees, confirms, is charged and is granted.
// The order's events carry it whole, so nothing is ever priced twice.
type Quote struct {
	OrderDate     Date        `json:"orderDate"`
	NewExpiry     Date        `json:"newExpiry"`
	CoTermination bool        `json:"coTermination"`
	GB            int         `json:"gb"`
	Lines         []QuoteLine `json:"lines"`
	NetCents      int64       `json:"netCents"`
	VATPercent    int64       `json:"vatPercent"`
	VATCents      int64       `json:"vatCents"`
	TotalCents    int64       `json:"totalCents"`
	Currency      string      `json:"currency"`
}

// QuoteLine is one priced item: the space (kind "space", months of validity) or a service
// extended to the new expiry (its kind, the months charged, its old expiry).
type QuoteLine struct {
	Kind      string `json:"kind"`
	Quantity  int    `json:"quantity"`
	Months    int    `json:"months"`
	UnitCents int64  `json:"unitCents"` // per GB and year for space, per unit and month for services
	NetCents  int64  `json:"netCents"`
	OldExpiry Date   `json:"oldExpiry,omitzero"`
	NewExpiry Date   `json:"newExpiry"`
}

// Service is one active service of a subscription.
type Service struct {
	Kind      string `json:"kind"`
	Quantity  int    `json:"quantity"`
	ExpiresOn Date   `json:"expiresOn"`
}

// VATCents is the rounding rule, the only one: line amounts are exact products of integer
// cents, VAT is taken once on the net total and rounded half up to the cent, and the total
// is net plus VAT.
func VATCents(netCents, vatPercent int64) int64 {
	return (netCents*vatPercent + 50) / 100
}

// SpaceExpiry is the expiry of space ordered on orderDate: a year later as a Rome civil date,
// 29 February going to 28 February.
func (c *Catalogue) SpaceExpiry(orderDate Date) Date {
	return orderDate.AddMonths(c.Space.ValidityMonths)
}

// Quote prices gb of extra space ordered on orderDate for a subscription with these
// services. With co-termination every service active on orderDate whose expiry is before
// the new expiry is extended to it, and each started month is charged; services already
// expired or already running past the new expiry are left alone.
func (c *Catalogue) Quote(services []Service, gb int, coTermination bool, orderDate Date) (Quote, error) {
	if gb < c.Space.MinGB || gb > c.Space.MaxGB {
		return Quote{}, fmt.Errorf("%w: %d GB, allowed %d..%d", ErrInvalidQuantity, gb, c.Space.MinGB, c.Space.MaxGB)
	}
	q := Quote{
		OrderDate:     orderDate,
		NewExpiry:     c.SpaceExpiry(orderDate),
		CoTermination: coTermination,
		GB:            gb,
		VATPercent:    c.VATPercent,
		Currency:      c.Currency,
	}
	q.Lines = append(q.Lines, QuoteLine{
		Kind:      KindSpace,
		Quantity:  gb,
		Months:    c.Space.ValidityMonths,
		UnitCents: c.Space.PricePerGBYearCents,
		NetCents:  int64(gb) * c.Space.PricePerGBYearCents,
		NewExpiry: q.NewExpiry,
	})
	if coTermination {
		for _, s := range services {
			if s.ExpiresOn.Before(orderDate) || !s.ExpiresOn.Before(q.NewExpiry) {
				continue
			}
			price, ok := c.Services[s.Kind]
			if !ok {
				return Quote{}, fmt.Errorf("%w: %q", ErrUnknownServiceKind, s.Kind)
			}
			months := s.ExpiresOn.MonthsUntil(q.NewExpiry)
			q.Lines = append(q.Lines, QuoteLine{
				Kind:      s.Kind,
				Quantity:  s.Quantity,
				Months:    months,
				UnitCents: price.MonthlyCents,
				NetCents:  int64(s.Quantity) * int64(months) * price.MonthlyCents,
				OldExpiry: s.ExpiresOn,
				NewExpiry: q.NewExpiry,
			})
		}
	}
	for _, l := range q.Lines {
		q.NetCents += l.NetCents
	}
	q.VATCents = VATCents(q.NetCents, q.VATPercent)
	q.TotalCents = q.NetCents + q.VATCents
	return q, nil
}

// Adds checks that a quote's money adds up: lines to net, net to VAT by the rounding rule,
// net and VAT to total.
func (q Quote) Adds() bool {
	var net int64
	for _, l := range q.Lines {
		net += l.NetCents
	}
	return net == q.NetCents && q.VATCents == VATCents(q.NetCents, q.VATPercent) && q.TotalCents == q.NetCents+q.VATCents
}

// ExtendedServices lists the service lines of the quote (all but the space).
func (q Quote) ExtendedServices() []QuoteLine {
	var out []QuoteLine
	for _, l := range q.Lines {
		if l.Kind != KindSpace {
			out = append(out, l)
		}
	}
	return out
}
