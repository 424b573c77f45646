package domain

import (
	"fmt"
	"math"
	"slices"
)

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

// KindEarlierSpace is the quote line of extra space bought earlier and still valid, aligned
// by co-termination to the new expiry.
const KindEarlierSpace = "earlier-space"

// SpaceExpiry is the expiry of space granted on day: the validity months later as a Rome
// civil date, the end of a month staying the end of a month.
func (c *Catalogue) SpaceExpiry(day Date) Date {
	return day.AddMonths(c.Space.ValidityMonths)
}

// Quote prices gb of extra space ordered on orderDate for a subscription with these
// services and no earlier space; see QuoteFor.
func (c *Catalogue) Quote(services []Service, gb int, coTermination bool, orderDate Date) (Quote, error) {
	return c.QuoteFor(services, nil, gb, coTermination, orderDate)
}

// QuoteFor prices gb of extra space ordered on orderDate for a subscription with these
// services and earlier blocks of space. With co-termination every service active on
// orderDate whose expiry is before the new expiry is extended to it, and each started month
// is charged; so is earlier space still valid on orderDate, per GB and month, one line per
// expiry. Services already expired or already running past the new expiry are left alone.
// The new expiry shown is as of orderDate: granted, it counts from the payment (Grant).
func (c *Catalogue) QuoteFor(services []Service, space []SpaceBlock, gb int, coTermination bool, orderDate Date) (Quote, error) {
	if gb < c.Space.MinGB || gb > c.Space.MaxGB {
		return Quote{}, fieldErr("gb", ErrInvalidQuantity, "%d GB, allowed %d..%d", gb, c.Space.MinGB, c.Space.MaxGB)
	}
	q := Quote{
		OrderDate:     orderDate,
		NewExpiry:     c.SpaceExpiry(orderDate),
		CoTermination: coTermination,
		GB:            gb,
		VATPercent:    c.VATPercent,
		Currency:      c.Currency,
	}
	net, ok := mulCents(int64(gb), 1, c.Space.PricePerGBYearCents)
	if !ok {
		return Quote{}, fieldErr("gb", ErrAmountOutOfRange, "%d GB", gb)
	}
	q.Lines = append(q.Lines, QuoteLine{
		Kind:      KindSpace,
		Quantity:  gb,
		Months:    c.Space.ValidityMonths,
		UnitCents: c.Space.PricePerGBYearCents,
		NetCents:  net,
		NewExpiry: q.NewExpiry,
	})
	if coTermination {
		lines, err := c.serviceLines(services, orderDate, q.NewExpiry)
		if err != nil {
			return Quote{}, err
		}
		q.Lines = append(q.Lines, lines...)
		if lines, err = c.earlierSpaceLines(space, orderDate, q.NewExpiry); err != nil {
			return Quote{}, err
		}
		q.Lines = append(q.Lines, lines...)
	}
	if err := q.total(); err != nil {
		return Quote{}, err
	}
	return q, nil
}

// serviceLines extend, with co-termination, every service still running on orderDate that
// would expire before newExpiry, up to newExpiry.
func (c *Catalogue) serviceLines(services []Service, orderDate, newExpiry Date) ([]QuoteLine, error) {
	var lines []QuoteLine
	for i, s := range services {
		if s.ExpiresOn.Before(orderDate) || !s.ExpiresOn.Before(newExpiry) {
			continue
		}
		price, ok := c.Services[s.Kind]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownServiceKind, s.Kind)
		}
		months := s.ExpiresOn.MonthsUntil(newExpiry)
		net, ok := mulCents(int64(s.Quantity), int64(months), price.MonthlyCents)
		if !ok || s.Quantity < 1 || s.Quantity > c.MaxQuantity() {
			return nil, fieldErr(fmt.Sprintf("services[%d].quantity", i), ErrInvalidServices, "%d, at most %d", s.Quantity, c.MaxQuantity())
		}
		lines = append(lines, QuoteLine{
			Kind:      s.Kind,
			Quantity:  s.Quantity,
			Months:    months,
			UnitCents: price.MonthlyCents,
			NetCents:  net,
			OldExpiry: s.ExpiresOn,
			NewExpiry: newExpiry,
		})
	}
	return lines, nil
}

// earlierSpaceLines extend, with co-termination, the space bought before that would expire
// before newExpiry, up to newExpiry.
func (c *Catalogue) earlierSpaceLines(space []SpaceBlock, orderDate, newExpiry Date) ([]QuoteLine, error) {
	var lines []QuoteLine
	for _, g := range earlierSpace(space, orderDate, newExpiry) {
		months := g.ValidUntil.MonthsUntil(newExpiry)
		net, ok := mulCents(int64(g.GB), int64(months), c.SpaceMonthlyCents())
		if !ok {
			return nil, fieldErr("space", ErrAmountOutOfRange, "%d GB of earlier space", g.GB)
		}
		lines = append(lines, QuoteLine{
			Kind:      KindEarlierSpace,
			Quantity:  g.GB,
			Months:    months,
			UnitCents: c.SpaceMonthlyCents(),
			NetCents:  net,
			OldExpiry: g.ValidUntil,
			NewExpiry: newExpiry,
		})
	}
	return lines, nil
}

// total adds the lines up into the net, the VAT and the total, refusing amounts that would
// overflow or exceed MaxAmountCents.
func (q *Quote) total() error {
	var ok bool
	for _, l := range q.Lines {
		if q.NetCents, ok = addCents(q.NetCents, l.NetCents); !ok {
			return fieldErr("gb", ErrAmountOutOfRange, "net total")
		}
	}
	vat, ok := mulCents(q.NetCents, 1, q.VATPercent)
	if !ok || vat > math.MaxInt64-50 {
		return fieldErr("gb", ErrAmountOutOfRange, "VAT")
	}
	q.VATCents = VATCents(q.NetCents, q.VATPercent)
	if q.TotalCents, ok = addCents(q.NetCents, q.VATCents); !ok || q.TotalCents > MaxAmountCents {
		return fieldErr("gb", ErrAmountOutOfRange, "total over %d cents", MaxAmountCents)
	}
	return nil
}

// earlierSpace groups the blocks valid on day that end before until by their expiry, in
// date order: each group is one line of the quote, and one alignment at the grant.
func earlierSpace(space []SpaceBlock, day, until Date) []SpaceBlock {
	var out []SpaceBlock
	for _, b := range space {
		if day.Before(b.ValidFrom) || day.After(b.ValidUntil) || !b.ValidUntil.Before(until) {
			continue
		}
		i := slices.IndexFunc(out, func(g SpaceBlock) bool { return g.ValidUntil == b.ValidUntil })
		if i < 0 {
			out = append(out, SpaceBlock{GB: b.GB, ValidUntil: b.ValidUntil})
			continue
		}
		out[i].GB += b.GB
	}
	slices.SortFunc(out, func(a, b SpaceBlock) int { return a.ValidUntil.Compare(b.ValidUntil) })
	return out
}

// mulCents is a*b*c when it fits in int64 and every factor is zero or more.
func mulCents(a, b, c int64) (int64, bool) {
	if a < 0 || b < 0 || c < 0 {
		return 0, false
	}
	ab, ok := mul(a, b)
	if !ok {
		return 0, false
	}
	return mul(ab, c)
}

func mul(a, b int64) (int64, bool) {
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

// addCents is a+b for amounts of zero or more, when it fits.
func addCents(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
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

// ExtendedServices lists the service lines of the quote (all but the space, new or earlier).
func (q Quote) ExtendedServices() []QuoteLine {
	var out []QuoteLine
	for _, l := range q.Lines {
		if l.Kind != KindSpace && l.Kind != KindEarlierSpace {
			out = append(out, l)
		}
	}
	return out
}

// EarlierSpace lists the quote's lines of earlier space aligned to the new expiry.
func (q Quote) EarlierSpace() []QuoteLine {
	var out []QuoteLine
	for _, l := range q.Lines {
		if l.Kind == KindEarlierSpace {
			out = append(out, l)
		}
	}
	return out
}

// SpaceMonths is how many months the quote's space runs once granted.
func (q Quote) SpaceMonths() int {
	for _, l := range q.Lines {
		if l.Kind == KindSpace && l.Months > 0 {
			return l.Months
		}
	}
	return 12
}

// GrantedExpiry is the expiry of the quote's space, and of every service it aligns, when its
// payment completes on paidOn: a year is a year from the day the space is granted.
func (q Quote) GrantedExpiry(paidOn Date) Date {
	return paidOn.AddMonths(q.SpaceMonths())
}
