package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/command"
)

func TestHistoryShowsTheChannelAndActorOfEachCommand(t *testing.T) {
	store := embedded(t)
	s := seed(t, store, 1)
	stream, err := audit.ResolveStream(testCtx(t), store, s.orders[0].String(), command.OrderCategory, command.SubscriptionCategory)
	if err != nil || stream != eventstore.StreamName(command.OrderCategory, s.orders[0]) {
		t.Fatalf("resolve: %q, %v", stream, err)
	}
	tl, err := audit.History(testCtx(t), store, stream)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ typ, channel string }{
		{"SpaceIncreaseRequested", "panel"},
		{"CoTerminationToggled", "app"},
		{"CheckoutStarted", "customer-area"},
		{"PaymentMethodSelected", "customer-area"},
		{"OrderConfirmed", "app"},
	}
	if len(tl.Entries) != len(want) || !tl.ChainIntact {
		t.Fatalf("timeline %+v", tl)
	}
	for i, w := range want {
		e := tl.Entries[i]
		if e.Type != w.typ || e.Channel != w.channel || e.Actor != "customer-0" || e.CorrelationID != "order-flow-0" ||
			e.Version != uint64(i) || e.Position == 0 || e.RecordedAt.IsZero() || len(e.Payload) == 0 {
			t.Fatalf("entry %d: %+v, want %s from %s by customer-0", i, e, w.typ, w.channel)
		}
	}
	var table bytes.Buffer
	if err := tl.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(table.String(), "\n")
	for i, w := range want {
		row := rows[1+i] // one line per event, under the header
		for _, field := range []string{w.typ, w.channel, "customer-0", "order-flow-0", "{"} {
			if !strings.Contains(row, field) {
				t.Fatalf("table row %q lacks %q:\n%s", row, field, table.String())
			}
		}
		// Aligned: each row's event, actor and payload start where the header's columns do.
		for j, col := range []string{"EVENT", "ACTOR", "PAYLOAD"} {
			at := strings.Index(rows[0], col)
			cell := []string{w.typ, "customer-0", "{"}[j]
			if strings.Index(row, cell) != at {
				t.Fatalf("column %s starts at %d in the header but row %d has %q there:\n%s", col, at, i, cell, table.String())
			}
		}
	}
	if !strings.Contains(table.String(), "hash chain intact") {
		t.Fatalf("table does not say the chain holds:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := tl.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back audit.Timeline
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Entries) != len(want) || back.Entries[0].Channel != "panel" {
		t.Fatalf("json: %v\n%s", err, js.String())
	}

	// The subscription's timeline: opened by the operator on import, slot reserved from the panel.
	sub, err := audit.ResolveStream(testCtx(t), store, s.subs[0].String(), command.OrderCategory, command.SubscriptionCategory)
	if err != nil {
		t.Fatal(err)
	}
	tl, err = audit.History(testCtx(t), store, sub)
	if err != nil || tl.Entries[0].Actor != "operator:ada" || tl.Entries[0].Channel != "import" || tl.Entries[1].Channel != "panel" {
		t.Fatalf("subscription timeline %+v, %v", tl, err)
	}
}

func get(t *testing.T, url string, into any) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if into != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, body)
		}
	}
	if res.StatusCode != http.StatusOK && res.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s: %d without problem JSON", url, res.StatusCode)
	}
	return res.StatusCode
}

func TestAuditEndpointsPageThroughTheLogAndStreams(t *testing.T) {
	store := embedded(t)
	s := seed(t, store, 3)
	srv := httptest.NewServer(audit.NewAPI(store, nil).Handler())
	t.Cleanup(srv.Close)
	want := readLog(t, store)

	var got []eventstore.Envelope
	url := srv.URL + "/v1/audit/events?limit=4"
	for pages := 0; ; pages++ {
		var page audit.EventsPage
		if code := get(t, url, &page); code != http.StatusOK {
			t.Fatalf("%s: %d", url, code)
		}
		for _, e := range page.Events {
			if e.Hash != eventstore.HashEnvelope(e.Envelope) {
				t.Fatalf("event %s: hash %s", e.ID, e.Hash)
			}
			got = append(got, e.Envelope)
		}
		if page.Next == nil {
			break
		}
		if pages > 100 {
			t.Fatal("no end of pages")
		}
		url = fmt.Sprintf("%s/v1/audit/events?after=%d&limit=4", srv.URL, *page.Next)
	}
	sameEvents(t, want, got, true)
	for i := range want {
		if !got[i].RecordedAt.Equal(want[i].RecordedAt) {
			t.Fatalf("event %d recorded at %s, want %s", i, got[i].RecordedAt, want[i].RecordedAt)
		}
	}

	order := eventstore.StreamName(command.OrderCategory, s.orders[1])
	var page audit.StreamPage
	if code := get(t, srv.URL+"/v1/audit/streams/"+order+"?limit=2", &page); code != http.StatusOK {
		t.Fatalf("stream: %d", code)
	}
	if len(page.Events) != 2 || page.Next == nil || *page.Next != 2 || !page.ChainIntact || page.Events[0].Metadata.Channel != "panel" {
		t.Fatalf("stream page %+v", page)
	}
	var rest audit.StreamPage
	get(t, fmt.Sprintf("%s/v1/audit/streams/%s?from=%d", srv.URL, order, *page.Next), &rest)
	if len(rest.Events) != 3 || rest.Next != nil || !rest.ChainIntact || rest.Events[0].Metadata.PrevHash != page.Events[1].Hash {
		t.Fatalf("second stream page %+v", rest)
	}

	for url, code := range map[string]int{
		"/v1/audit/streams/not-a-stream":                                   http.StatusBadRequest,
		"/v1/audit/streams/" + eventstore.StreamName("order", [16]byte{1}): http.StatusNotFound,
		"/v1/audit/events?after=x":                                         http.StatusBadRequest,
		"/v1/audit/events?after=-1":                                        http.StatusBadRequest,
		"/v1/audit/events?from=0":                                          http.StatusBadRequest,
		"/v1/audit/events?limit=0":                                         http.StatusBadRequest,
		"/v1/audit/events?limit=5000":                                      http.StatusBadRequest,
	} {
		if got := get(t, srv.URL+url, nil); got != code {
			t.Errorf("%s: %d, want %d", url, got, code)
		}
	}
	var end audit.EventsPage
	get(t, fmt.Sprintf("%s/v1/audit/events?after=%d", srv.URL, want[len(want)-1].Position), &end)
	if len(end.Events) != 0 || end.Next != nil || end.Head != want[len(want)-1].Position {
		t.Fatalf("past the head: %+v", end)
	}
}

func TestProgressBarIsSilentOffATerminal(t *testing.T) {
	var buf bytes.Buffer
	if _, ok := audit.NewBar(&buf, "export").(audit.NoProgress); !ok {
		t.Fatal("a bar on a buffer")
	}
	src := embedded(t)
	seed(t, src, 1)
	if _, err := audit.Export(testCtx(t), src, io.Discard, audit.NewBar(&buf, "export")); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("progress written off a terminal: %q", buf.String())
	}
}
