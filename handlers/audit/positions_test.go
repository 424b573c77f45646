package audit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/einvoice/spaceorders/eventstore"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb"
	"github.com/einvoice/spaceorders/eventstore/kurrentdb/standin"
	"github.com/einvoice/spaceorders/handlers/audit"
)

// On KurrentDB (here its STAND-IN) positions are log offsets, not dense: the log's pages
// go from one answered position to the next, and an `after` the log never answered is the
// client's mistake, a 400, not a 500.
func TestAuditEventsPagesByAnsweredPositionsOnKurrentDBStandin(t *testing.T) {
	conn, stop := standin.Start()
	t.Cleanup(stop)
	store, err := kurrentdb.Open(testCtx(t), conn, kurrentdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	seed(t, store, 2)
	want := readLog(t, store)
	srv := httptest.NewServer(audit.NewAPI(store, nil).Handler())
	t.Cleanup(srv.Close)

	var got []eventstore.Envelope
	url := srv.URL + "/v1/audit/events?limit=1"
	for pages := 0; pages < 100; pages++ {
		var page audit.EventsPage
		if code := get(t, url, &page); code != http.StatusOK {
			t.Fatalf("%s: %d", url, code)
		}
		for _, e := range page.Events {
			got = append(got, e.Envelope)
		}
		if page.Next == nil {
			break
		}
		url = fmt.Sprintf("%s/v1/audit/events?after=%d&limit=1", srv.URL, *page.Next)
	}
	sameEvents(t, want, got, true)

	if code := get(t, fmt.Sprintf("%s/v1/audit/events?after=%d", srv.URL, want[0].Position-1), nil); code != http.StatusBadRequest {
		t.Fatalf("after a position the log never answered: %d, want 400", code)
	}
	// The remote log (orderctl --server) reads through the same pages.
	remote, err := audit.NewRemote(srv.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyStore(testCtx(t), remote.Log(), nil, nil)
	if err != nil || rep.Digest.Events != uint64(len(want)) {
		t.Fatalf("verify through the API: %+v, %v", rep, err)
	}
}
