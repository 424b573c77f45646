package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/command"
	"github.com/einvoice/spaceorders/handlers/httpapi"
	"github.com/einvoice/spaceorders/handlers/tokens"
	"github.com/einvoice/spaceorders/internal/testwait"
)

// The help page's flow, over HTTP, from each channel: open, request, toggle, checkout,
// payment method, modify, checkout, payment method, confirm, pay; then the process manager
// grants the space and extends the services.
func TestSeedFlowFromEachChannel(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	e := start(t, zap.New(core))
	op := e.token(tokens.RoleOperator, "op-1")
	pay := e.token(tokens.RolePayments, "gateway")
	for _, channel := range []string{"panel", "customer-area", "app"} {
		t.Run(channel, func(t *testing.T) {
			owner := "cust-" + channel
			cu := e.token(tokens.RoleCustomer, owner)
			r := must(t, e.do("POST", "/v1/subscriptions", op, subscriptionBody(owner)), http.StatusCreated)
			subID := r.str(t, "subscriptionId")
			if r.header.Get("Location") != "/v1/subscriptions/"+subID {
				t.Fatalf("Location %q", r.header.Get("Location"))
			}

			cid := "corr-" + channel
			r = must(t, e.do("POST", "/v1/orders", cu, map[string]any{"subscriptionId": subID, "gb": 1, "channel": channel},
				"X-Correlation-ID", cid), http.StatusCreated)
			o := r.json(t)
			orderID := o["orderId"].(string)
			for _, f := range []string{"orderId", "version", "position", "quote", "subscriptionId", "status", "paymentMethod", "paidCents"} {
				if _, ok := o[f]; !ok {
					t.Fatalf("answer lacks %q: %s", f, r.body)
				}
			}
			if r.header.Get(httpapi.HeaderCorrelationID) != cid {
				t.Fatalf("correlation id not echoed")
			}
			q := o["quote"].(map[string]any)
			if q["coTermination"] != true || len(q["lines"].([]any)) != 4 {
				t.Fatalf("first quote should co-terminate the three services: %v", q)
			}
			path := "/v1/orders/" + orderID
			r = must(t, e.do("POST", path+"/co-termination", cu, map[string]any{"enabled": false}, "X-Correlation-ID", cid), 200)
			q = r.json(t)["quote"].(map[string]any)
			if q["coTermination"] != false || len(q["lines"].([]any)) != 1 {
				t.Fatalf("without co-termination only the space is quoted: %v", q)
			}
			must(t, e.do("POST", path+"/co-termination", cu, map[string]any{"enabled": true}, "X-Correlation-ID", cid), 200)
			must(t, e.do("POST", path+"/checkout", cu, nil, "X-Correlation-ID", cid), 200)
			r = must(t, e.do("POST", path+"/payment-method", cu, map[string]any{"method": "card"}, "X-Correlation-ID", cid), 200)
			if r.str(t, "paymentMethod") != "card" || r.str(t, "status") != "checkout" {
				t.Fatalf("after payment method: %s", r.body)
			}
			r = must(t, e.do("POST", path+"/modify", cu, map[string]any{"gb": 2, "coTermination": true}, "X-Correlation-ID", cid), 200)
			if r.str(t, "status") != "cart" || r.str(t, "paymentMethod") != "" {
				t.Fatalf("modify goes back to the cart and voids the method: %s", r.body)
			}
			must(t, e.do("POST", path+"/checkout", cu, nil, "X-Correlation-ID", cid), 200)
			must(t, e.do("POST", path+"/payment-method", cu, map[string]any{"method": "bank-transfer"}, "X-Correlation-ID", cid), 200)
			r = must(t, e.do("POST", path+"/confirm", cu, confirmBody(), "X-Correlation-ID", cid), 200)
			if r.str(t, "status") != "confirmed" {
				t.Fatalf("confirm: %s", r.body)
			}
			q = r.json(t)["quote"].(map[string]any)
			total := q["totalCents"].(float64)
			if q["gb"].(float64) != 2 {
				t.Fatalf("confirmed quote is for 2 GB: %v", q)
			}
			newExpiry := q["newExpiry"].(string)

			r = must(t, e.do("POST", path+"/payments", pay, map[string]any{"amountCents": total, "method": "bank-transfer", "reference": "TRN-" + channel}), 200)
			if r.str(t, "status") != "paid" || r.json(t)["paidCents"].(float64) != total {
				t.Fatalf("payment: %s", r.body)
			}

			var sub map[string]any
			testwait.For(t, "the purchase is applied to the subscription", func() bool {
				sub = must(t, e.do("GET", "/v1/subscriptions/"+subID, cu, nil), 200).json(t)
				return len(sub["space"].([]any)) == 1
			})
			block := sub["space"].([]any)[0].(map[string]any)
			if block["orderId"] != orderID || block["gb"].(float64) != 2 || block["validUntil"] != newExpiry {
				t.Fatalf("space block %v", block)
			}
			if sub["totalGB"].(float64) != 3 || sub["openOrderId"] != nil {
				t.Fatalf("subscription after purchase: %v", sub)
			}
			for _, s := range sub["services"].([]any) {
				if s.(map[string]any)["expiresOn"] != newExpiry {
					t.Fatalf("service not extended to %s: %v", newExpiry, s)
				}
			}
			r = must(t, e.do("GET", path, cu, nil), 200)
			if r.str(t, "status") != "paid" || r.header.Get("ETag") == "" {
				t.Fatalf("GET order: %s", r.body)
			}

			// Metadata on every event: correlation, causation, actor, channel.
			envs := e.events(command.OrderCategory, orderID)
			if len(envs) != 11 {
				t.Fatalf("%d order events, want 11: %v", len(envs), typesOf(envs))
			}
			causes := map[string]bool{}
			for _, env := range envs {
				md := env.Metadata
				if md.CorrelationID != cid && env.Type != "PaymentRegistered" && env.Type != "OrderPaid" {
					t.Errorf("%s correlation %q, want %q", env.Type, md.CorrelationID, cid)
				}
				if md.CausationID == "" {
					t.Errorf("%s has no causation id", env.Type)
				}
				causes[md.CausationID] = true
				wantActor, wantChannel := owner, channel
				if env.Type == "PaymentRegistered" || env.Type == "OrderPaid" {
					wantActor, wantChannel = "gateway", ""
				}
				if md.Actor != wantActor || md.Channel != wantChannel {
					t.Errorf("%s actor %q channel %q, want %q %q", env.Type, md.Actor, md.Channel, wantActor, wantChannel)
				}
			}
			if len(causes) != 10 { // one per request; the payment's two events share theirs
				t.Errorf("%d causation ids, want 10 (one per request)", len(causes))
			}
			subEnvs := e.events(command.SubscriptionCategory, subID)
			if countTypes(subEnvs, "SpaceAdded") != 1 || countTypes(subEnvs, "ServicesExtended") != 1 {
				t.Fatalf("subscription events: %v", subEnvs)
			}
			applied := subEnvs[len(subEnvs)-2]
			// The paying request grants the space itself (the process manager only when that
			// request died between the two appends): either way OrderPaid is the cause.
			if (applied.Metadata.Actor != "gateway" && applied.Metadata.Actor != "process:purchases") ||
				applied.Metadata.CausationID != envs[len(envs)-1].ID.String() {
				t.Fatalf("SpaceAdded metadata %+v: caused by OrderPaid %s", applied.Metadata, envs[len(envs)-1].ID)
			}
		})
	}

	// Request logs carry correlation id, route, status and latency; metrics count requests.
	found := false
	for _, l := range logs.FilterMessage("request").All() {
		m := l.ContextMap()
		if m["correlation_id"] == "corr-app" && m["route"] == "POST /v1/orders/{id}/confirm" && m["status"] == int64(200) {
			if _, ok := m["latency"]; ok {
				found = true
			}
		}
	}
	if !found {
		t.Error("no request log line with correlation id, route, status and latency for the confirm")
	}
	metrics := string(must(t, e.do("GET", "/metrics", "", nil), 200).body)
	for _, want := range []string{
		`http_requests_total{code="201",method="POST",route="POST /v1/orders"} 3`,
		`orders_commands_total{command="ConfirmOrder",outcome="accepted"} 3`,
		`orders_commands_total{command="RequestSpaceIncrease",outcome="accepted"} 3` + "\n",
		`http_request_duration_seconds_bucket{method="POST",route="POST /v1/orders/{id}/payments"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func typesOf(envs []eventstore.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Type
	}
	return out
}
