package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/einvoice/spaceorders/domain"
)

// MaxBody is the largest request body accepted (413 beyond).
const MaxBody = 64 << 10

// Request bodies, with the field names outside scripts rely on.

// OpenSubscriptionBody is POST /v1/subscriptions.
type OpenSubscriptionBody struct {
	// SubscriptionID lets an import choose the id; empty: a new one.
	SubscriptionID *uuid.UUID       `json:"subscriptionId,omitempty"`
	OwnerID        string           `json:"ownerId"`
	Holder         domain.Holder    `json:"holder"`
	Language       string           `json:"language"`
	Services       []domain.Service `json:"services"`
}

// RequestSpaceBody is POST /v1/orders.
type RequestSpaceBody struct {
	SubscriptionID uuid.UUID `json:"subscriptionId"`
	GB             *int      `json:"gb,omitempty"` // default 1
	Channel        string    `json:"channel"`
}

// CoTerminationBody is POST /v1/orders/{id}/co-termination.
type CoTerminationBody struct {
	Enabled *bool `json:"enabled"`
}

// PaymentMethodBody is POST /v1/orders/{id}/payment-method.
type PaymentMethodBody struct {
	Method string `json:"method"`
}

// ModifyBody is POST /v1/orders/{id}/modify; a field left out keeps the order's value.
type ModifyBody struct {
	GB            *int  `json:"gb,omitempty"`
	CoTermination *bool `json:"coTermination,omitempty"`
}

// ConfirmBody is POST /v1/orders/{id}/confirm.
type ConfirmBody struct {
	AcceptGeneralConditions bool   `json:"acceptGeneralConditions"`
	ApproveUnfairTerms      bool   `json:"approveUnfairTerms"`
	AcknowledgePrivacy      bool   `json:"acknowledgePrivacy"`
	TermsVersion            string `json:"termsVersion"`
	// ExpectedTotalCents is the total the customer was shown; optional. Another total, or
	// a quote of another day, answers 409 quote-changed with the new quote.
	ExpectedTotalCents *int64 `json:"expectedTotalCents,omitempty"`
}

// PaymentBody is POST /v1/orders/{id}/payments.
type PaymentBody struct {
	AmountCents int64  `json:"amountCents"`
	Method      string `json:"method"`
	Reference   string `json:"reference"`
}

// CancelBody is POST /v1/orders/{id}/cancel; the body may be empty.
type CancelBody struct {
	Reason string `json:"reason,omitempty"`
}

// UsageBody is POST /v1/subscriptions/{id}/usage.
type UsageBody struct {
	UsedBytes *int64 `json:"usedBytes"`
}

func malformed(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, CodeMalformed, "The request is not well formed.", fmt.Sprintf(format, args...))
}

// decodeStrict reads exactly one JSON object into v, refusing unknown fields and trailing
// data. An empty body reads as {}.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformed("%s", describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return malformed("the body holds more than one JSON value")
	}
	return nil
}

func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %q: expected %s", te.Field, te.Type)
	}
	return err.Error()
}

// DecodeOpenSubscription reads POST /v1/subscriptions.
func DecodeOpenSubscription(body []byte) (OpenSubscriptionBody, error) {
	var b OpenSubscriptionBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodeRequestSpace reads POST /v1/orders.
func DecodeRequestSpace(body []byte) (RequestSpaceBody, error) {
	var b RequestSpaceBody
	if err := decodeStrict(body, &b); err != nil {
		return b, err
	}
	if b.SubscriptionID == uuid.Nil {
		return b, malformed("subscriptionId is required")
	}
	if b.GB == nil {
		one := 1
		b.GB = &one
	}
	return b, nil
}

// requestSpaceOpening reads POST /v1/orders as the opening of a cart for extra space.
func requestSpaceOpening(body []byte) (Opening, error) {
	b, err := DecodeRequestSpace(body)
	if err != nil {
		return Opening{}, err
	}
	return Opening{b.SubscriptionID, b.Channel, domain.RequestSpaceIncrease{GB: *b.GB, Channel: b.Channel}}, nil
}

// DecodeCoTermination reads POST /v1/orders/{id}/co-termination.
func DecodeCoTermination(body []byte) (CoTerminationBody, error) {
	var b CoTerminationBody
	if err := decodeStrict(body, &b); err != nil {
		return b, err
	}
	if b.Enabled == nil {
		return b, malformed("enabled is required")
	}
	return b, nil
}

// DecodePaymentMethod reads POST /v1/orders/{id}/payment-method.
func DecodePaymentMethod(body []byte) (PaymentMethodBody, error) {
	var b PaymentMethodBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodeModify reads POST /v1/orders/{id}/modify.
func DecodeModify(body []byte) (ModifyBody, error) {
	var b ModifyBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodeConfirm reads POST /v1/orders/{id}/confirm.
func DecodeConfirm(body []byte) (ConfirmBody, error) {
	var b ConfirmBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodePayment reads POST /v1/orders/{id}/payments.
func DecodePayment(body []byte) (PaymentBody, error) {
	var b PaymentBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodeCancel reads POST /v1/orders/{id}/cancel.
func DecodeCancel(body []byte) (CancelBody, error) {
	var b CancelBody
	err := decodeStrict(body, &b)
	return b, err
}

// DecodeUsage reads POST /v1/subscriptions/{id}/usage.
func DecodeUsage(body []byte) (UsageBody, error) {
	var b UsageBody
	if err := decodeStrict(body, &b); err != nil {
		return b, err
	}
	if b.UsedBytes == nil {
		return b, malformed("usedBytes is required")
	}
	return b, nil
}

// ParseIfMatch reads an If-Match header holding one version: 3, "3" or W/"3". Empty or
// "*" mean no precondition (nil).
func ParseIfMatch(h string) (*uint64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return nil, nil
	}
	v := strings.TrimPrefix(h, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, malformed("If-Match %q is not a version (send the ETag you were given, e.g. \"3\")", h)
	}
	return &n, nil
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }

// readBody checks the content type and reads at most MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	if ct := r.Header.Get("Content-Type"); ct != "" || hasBody {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
				"The body must be JSON.", fmt.Sprintf("Content-Type %q: send application/json", ct))
		}
	}
	if r.ContentLength > MaxBody {
		return nil, tooLarge()
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge()
	}
	if err != nil {
		return nil, malformed("reading the body: %v", err)
	}
	return b, nil
}

func tooLarge() *apiError {
	return errorf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "The body is too large.",
		fmt.Sprintf("at most %d bytes", MaxBody))
}
