package httpapi

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/tokens"
)

// SubscriptionView is a subscription as the API shows it.
type SubscriptionView struct {
	SubscriptionID uuid.UUID           `json:"subscriptionId"`
	OwnerID        string              `json:"ownerId"`
	Holder         domain.Holder       `json:"holder"`
	Language       string              `json:"language"`
	Services       []domain.Service    `json:"services"`
	BaseGB         int                 `json:"baseGB"`
	OpenedOn       domain.Date         `json:"openedOn"`
	Space          []domain.SpaceBlock `json:"space"`
	// PurchasedGB is the purchased space valid today; TotalGB adds the base space.
	PurchasedGB     int        `json:"purchasedGB"`
	TotalGB         int        `json:"totalGB"`
	UsedBytes       int64      `json:"usedBytes"`
	UsageReportedAt time.Time  `json:"usageReportedAt,omitzero"`
	OpenOrderID     *uuid.UUID `json:"openOrderId,omitempty"`
	Version         uint64     `json:"version"`
	Position        *uint64    `json:"position,omitempty"`
}

func subscriptionView(s domain.Subscription, version uint64, today domain.Date) SubscriptionView {
	v := SubscriptionView{
		SubscriptionID: s.ID, OwnerID: s.OwnerID, Holder: s.Holder, Language: s.Language,
		Services: s.Services, BaseGB: s.BaseGB, OpenedOn: s.OpenedOn, Space: s.Space,
		PurchasedGB: s.PurchasedGB(today), UsedBytes: s.UsedBytes, UsageReportedAt: s.UsageReportedAt,
		Version: version,
	}
	if v.Space == nil {
		v.Space = []domain.SpaceBlock{}
	}
	if v.Services == nil {
		v.Services = []domain.Service{}
	}
	v.TotalGB = v.BaseGB + v.PurchasedGB
	if s.OpenOrder != uuid.Nil {
		id := s.OpenOrder
		v.OpenOrderID = &id
	}
	return v
}

func (s *Server) now() time.Time     { return s.clock() }
func (s *Server) today() domain.Date { return domain.DateOf(s.now()) }

// visibleSubscription loads a subscription the caller may see: another customer's is
// answered as unknown, so that its existence is not disclosed.
func (s *Server) visibleSubscription(c *call, id uuid.UUID) (domain.Subscription, uint64, error) {
	load := s.cmds.Subscription
	if c.fresh {
		load = s.cmds.SubscriptionNow
	}
	sub, ver, ok, err := load(c.ctx(), id)
	if err != nil {
		return sub, ver, err
	}
	if !ok {
		return sub, ver, domain.ErrUnknownSubscription
	}
	return sub, ver, c.maySee(sub)
}

// maySee refuses a subscription the caller may not see: one never opened, or another
// customer's, answered as unknown so that its existence is not disclosed.
func (c *call) maySee(sub domain.Subscription) error {
	if !sub.Opened || (c.p.Role == tokens.RoleCustomer && sub.OwnerID != c.p.Subject) {
		return domain.ErrUnknownSubscription
	}
	return nil
}

func (s *Server) openSubscription(c *call) (int, any, error) {
	b, err := DecodeOpenSubscription(c.body)
	if err != nil {
		return 0, nil, err
	}
	id := uuid.New()
	if c.meta.Key != uuid.Nil {
		// A retry of the same keyed request opens the same subscription, at most once.
		id = command.DerivedID(c.meta.Key, "subscription")
	}
	if b.SubscriptionID != nil && *b.SubscriptionID != uuid.Nil {
		id = *b.SubscriptionID
	}
	cmd := domain.OpenSubscription{SubscriptionID: id, OwnerID: b.OwnerID, Holder: b.Holder, Language: b.Language, Services: b.Services}
	res, sub, err := s.cmds.ExecuteSubscription(c.ctx(), id, cmd, c.meta, c.ifMatch)
	if err != nil {
		return 0, nil, err
	}
	v := subscriptionView(sub, res.Version, s.today())
	v.Position = &res.Position
	c.w.Header().Set("Location", "/v1/subscriptions/"+id.String())
	c.w.Header().Set("ETag", etag(res.Version))
	return http.StatusCreated, v, nil
}

func (s *Server) getSubscription(c *call) (int, any, error) {
	id, err := pathID(c.r, domain.ErrUnknownSubscription)
	if err != nil {
		return 0, nil, err
	}
	if c.fresh, err = freshAfter(c.r); err != nil {
		return 0, nil, err
	}
	sub, ver, err := s.visibleSubscription(c, id)
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("ETag", etag(ver))
	return http.StatusOK, subscriptionView(sub, ver, s.today()), nil
}

func (s *Server) reportUsage(c *call) (int, any, error) {
	id, err := pathID(c.r, domain.ErrUnknownSubscription)
	if err != nil {
		return 0, nil, err
	}
	b, err := DecodeUsage(c.body)
	if err != nil {
		return 0, nil, err
	}
	res, sub, err := s.cmds.ExecuteSubscription(c.ctx(), id, domain.ReportUsage{UsedBytes: *b.UsedBytes}, c.meta, c.ifMatch)
	if err != nil {
		return 0, nil, err
	}
	v := subscriptionView(sub, res.Version, s.today())
	v.Position = &res.Position
	c.w.Header().Set("ETag", etag(res.Version))
	return http.StatusOK, v, nil
}
