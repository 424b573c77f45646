package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// OrderView is an order as the API shows it.
type OrderView struct {
	OrderID        uuid.UUID           `json:"orderId"`
	SubscriptionID uuid.UUID           `json:"subscriptionId"`
	OwnerID        string              `json:"ownerId"`
	Channel        string              `json:"channel"`
	Status         domain.OrderStatus  `json:"status"`
	Quote          domain.Quote        `json:"quote"`
	PaymentMethod  string              `json:"paymentMethod"`
	PaidCents      int64               `json:"paidCents"`
	DueCents       int64               `json:"dueCents"`
	RequestedAt    time.Time           `json:"requestedAt"`
	ConfirmedAt    time.Time           `json:"confirmedAt,omitzero"`
	PayBy          domain.Date         `json:"payBy,omitzero"`
	Acceptances    *domain.Acceptances `json:"acceptances,omitempty"`
	// ExpiryCountsFrom says from when the quote's new expiry counts: "payment". The quote's
	// newExpiry is as of its orderDate; granted, the space runs its months from the day the
	// payment completes, and co-terminated services are aligned to that day.
	ExpiryCountsFrom string `json:"expiryCountsFrom"`
	// GrantedUntil, once paid, is the expiry the payment gave the space and services.
	GrantedUntil domain.Date `json:"grantedUntil,omitzero"`
	// AbandonsOn, for a cart or order form, is the day the sweeper ends it if untouched.
	AbandonsOn domain.Date `json:"abandonsOn,omitzero"`
	// QuoteStale, for a cart or order form, says the quote is of an earlier Rome day: the
	// next command prices it again, and a confirmation is refused with the new quote.
	QuoteStale bool `json:"quoteStale,omitempty"`
	// CreditDueCents is the money received that the order did not take, owed back.
	CreditDueCents int64           `json:"creditDueCents"`
	Credits        []domain.Credit `json:"credits,omitempty"`
	Version        uint64          `json:"version"`
	// Position is the log position of the command's last event (command answers only).
	Position *uint64 `json:"position,omitempty"`
}

func (s *Server) orderView(o domain.Order, version uint64) OrderView {
	v := OrderView{
		OrderID: o.ID, SubscriptionID: o.SubscriptionID, OwnerID: o.OwnerID, Channel: o.Channel,
		Status: o.Status, Quote: o.Quote, PaymentMethod: o.PaymentMethod, PaidCents: o.PaidCents,
		DueCents: o.DueCents(), RequestedAt: o.RequestedAt, ConfirmedAt: o.ConfirmedAt, PayBy: o.PayBy,
		Version: version, ExpiryCountsFrom: "payment", CreditDueCents: o.CreditCents, Credits: o.Credits,
	}
	if o.Status == domain.StatusPaid {
		v.GrantedUntil = o.Quote.GrantedExpiry(domain.DateOf(o.PaidAt))
	}
	if o.Status == domain.StatusCart || o.Status == domain.StatusCheckout {
		v.AbandonsOn = o.AbandonsOn(s.cmds.Catalogue())
		v.QuoteStale = o.Quote.OrderDate != domain.DateOf(s.now())
	}
	if o.Acceptances.GeneralConditions {
		a := o.Acceptances
		v.Acceptances = &a
	}
	return v
}

// mayActOn refuses an order the caller may not act on: one that does not exist, or another
// customer's, which is answered as unknown (404), never as forbidden, so that its existence
// is not disclosed.
func (c *call) mayActOn(o domain.Order) error {
	if o.Status == domain.StatusNone || (c.p.Role == tokens.RoleCustomer && o.OwnerID != c.p.Subject) {
		return domain.ErrUnknownOrder
	}
	return nil
}

// visibleOrder loads an order the caller may see (see mayActOn).
func (s *Server) visibleOrder(c *call) (uuid.UUID, domain.Order, uint64, error) {
	id, err := pathID(c.r, domain.ErrUnknownOrder)
	if err != nil {
		return id, domain.Order{}, 0, err
	}
	load := s.cmds.Order
	if c.fresh {
		load = s.cmds.OrderNow
	}
	o, ver, ok, err := load(c.ctx(), id)
	if err != nil {
		return id, o, ver, err
	}
	if !ok {
		return id, o, ver, domain.ErrUnknownOrder
	}
	return id, o, ver, c.mayActOn(o)
}

func (s *Server) getOrder(c *call) (int, any, error) {
	fresh, err := freshAfter(c.r)
	if err != nil {
		return 0, nil, err
	}
	c.fresh = fresh
	_, o, ver, err := s.visibleOrder(c)
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("ETag", etag(ver))
	return http.StatusOK, s.orderView(o, ver), nil
}

// Opening is a request that opens an order: the subscription it is for, the channel it is
// placed from, and the command of what is bought.
type Opening struct {
	SubscriptionID uuid.UUID
	Channel        string
	Command        domain.OrderOpener
}

// openOrder serves a route that opens an order with what decode reads from the body: on a
// subscription the caller may see, answered 201 with the new order and its Location. Every
// purchasable item is one such route.
func (s *Server) openOrder(decode func(body []byte) (Opening, error)) serveFunc {
	return func(c *call) (int, any, error) {
		req, err := decode(c.body)
		if err != nil {
			return 0, nil, err
		}
		c.meta.Channel = req.Channel
		// The caller's right to order on the subscription is checked on the subscription
		// the order is decided on, loaded once.
		id, res, o, err := s.cmds.OpenOrder(c.ctx(), req.SubscriptionID, req.Command, c.meta, c.maySee)
		if err != nil {
			return 0, nil, err
		}
		v := s.orderView(o, res.Version)
		v.Position = &res.Position
		c.w.Header().Set("Location", "/v1/orders/"+id.String())
		c.w.Header().Set("ETag", etag(res.Version))
		return http.StatusCreated, v, nil
	}
}

// orderCommand runs the command build makes from the body and the order's current state.
// The order is loaded once, by the command: the caller's right to act on it is checked,
// and the command built, on the very state it is decided on.
func (s *Server) orderCommand(c *call, build func(o domain.Order) (domain.OrderCommand, error)) (int, any, error) {
	id, err := pathID(c.r, domain.ErrUnknownOrder)
	if err != nil {
		return 0, nil, err
	}
	var cmd domain.OrderCommand
	res, after, err := s.cmds.UpdateOrder(c.ctx(), id, c.meta, c.ifMatch, func(o domain.Order, meta *command.Meta) (domain.OrderCommand, error) {
		if err := c.mayActOn(o); err != nil {
			return nil, err
		}
		var err error
		if cmd, err = build(o); err != nil {
			return nil, err
		}
		// The order's events carry the channel it was placed from; another role's command
		// (a payment, an operator's cancellation) carries none.
		if c.p.Role == tokens.RoleCustomer {
			meta.Channel = o.Channel
		}
		return cmd, nil
	})
	if err != nil {
		return 0, nil, err
	}
	if pay, ok := cmd.(domain.RegisterPayment); ok {
		// Rule 2: a payment for an order whose subscription is no longer active does not pay
		// it (422), yet the money, having arrived, is recorded as a credit due (rule 6). A
		// retry of the same transaction answers the same.
		for _, cr := range after.Credits {
			if cr.Reason == domain.CreditSubscriptionNotActive && cr.Reference == strings.TrimSpace(pay.Reference) {
				return 0, nil, &creditRecorded{err: domain.ErrSubscriptionNotActive, credit: cr.AmountCents, version: res.Version, position: res.Position}
			}
		}
	}
	v := s.orderView(after, res.Version)
	v.Position = &res.Position
	c.w.Header().Set("ETag", etag(res.Version))
	return http.StatusOK, v, nil
}

func (s *Server) toggleCoTermination(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		b, err := DecodeCoTermination(c.body)
		if err != nil {
			return nil, err
		}
		return domain.ToggleCoTermination{Enabled: *b.Enabled}, nil
	})
}

func (s *Server) proceedToCheckout(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		if err := decodeStrict(c.body, &struct{}{}); err != nil {
			return nil, err
		}
		return domain.ProceedToCheckout{}, nil
	})
}

func (s *Server) selectPaymentMethod(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		b, err := DecodePaymentMethod(c.body)
		if err != nil {
			return nil, err
		}
		return domain.SelectPaymentMethod{Method: b.Method}, nil
	})
}

func (s *Server) modifyOrder(c *call) (int, any, error) {
	return s.orderCommand(c, func(o domain.Order) (domain.OrderCommand, error) {
		b, err := DecodeModify(c.body)
		if err != nil {
			return nil, err
		}
		cmd := domain.ModifyOrder{GB: o.Quote.GB, CoTermination: o.Quote.CoTermination}
		if b.GB != nil {
			cmd.GB = *b.GB
		}
		if b.CoTermination != nil {
			cmd.CoTermination = *b.CoTermination
		}
		return cmd, nil
	})
}

func (s *Server) confirmOrder(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		b, err := DecodeConfirm(c.body)
		if err != nil {
			return nil, err
		}
		return domain.ConfirmOrder{
			AcceptGeneralConditions: b.AcceptGeneralConditions, ApproveUnfairTerms: b.ApproveUnfairTerms,
			AcknowledgePrivacy: b.AcknowledgePrivacy, TermsVersion: b.TermsVersion, ExpectedTotalCents: b.ExpectedTotalCents,
		}, nil
	})
}

func (s *Server) cancelOrder(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		b, err := DecodeCancel(c.body)
		if err != nil {
			return nil, err
		}
		reason := b.Reason
		if reason == "" {
			reason = "cancelled by " + string(c.p.Role)
		}
		// Only an operator may cancel a partly paid order (what was paid becomes a credit due).
		return domain.CancelOrder{Reason: reason, ByOperator: c.p.Role == tokens.RoleOperator}, nil
	})
}

func (s *Server) registerPayment(c *call) (int, any, error) {
	return s.orderCommand(c, func(domain.Order) (domain.OrderCommand, error) {
		b, err := DecodePayment(c.body)
		if err != nil {
			return nil, err
		}
		return domain.RegisterPayment(b), nil
	})
}
