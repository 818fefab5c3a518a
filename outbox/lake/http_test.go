package lake_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

// Every bad parameter is 400 validation_failed naming it; unknown ids and
// keys are 404; the token guards every endpoint.
func TestLakeQueriesRefuseBadInput(t *testing.T) {
	a := newLakeApp(t)
	id, _ := a.signUpAndActivate(1)
	a.settle()
	for _, c := range []struct{ path, field string }{
		{"/lake/events?after=-1", "after"},
		{"/lake/events?after=x", "after"},
		{"/lake/events?limit=0", "limit"},
		{"/lake/events?limit=ten", "limit"},
		{"/lake/events?type=Users.Created", "type"},
		{"/lake/events?type=", "type"},
		{"/lake/events?subject=", "subject"},
		{"/lake/events?correlation_id=", "correlation_id"},
		{"/lake/events?from=yesterday", "from"},
		{"/lake/events?to=2026-13-01T00:00:00Z", "to"},
		{"/lake/events?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"/lake/subjects/" + id + "/events?as_of=now", "as_of"},
		{"/lake/subjects/" + id + "/state?as_of=1700000000", "as_of"},
		{"/lake/subjects/" + id + "/state?type=", "type"},
		{"/lake/subjects/" + id + "/state?type=orders.nothing", "type"},
		{"/lake/events/not-a-uuid/lineage", "id"},
	} {
		r := a.admin(c.path)
		if r.Status != 400 || r.ErrorCode() != "validation_failed" || r.Field(c.field) == nil {
			t.Errorf("%s: %d %s, want 400 validation_failed naming %s", c.path, r.Status, r.Raw, c.field)
		}
	}
	// Several at once: all named.
	if r := a.admin("/lake/events?after=x&limit=0&from=y"); r.Field("after") == nil || r.Field("limit") == nil || r.Field("from") == nil {
		t.Errorf("three bad parameters: %s", r.Raw)
	}
	for _, path := range []string{
		"/lake/events/0193a7f0-0000-7000-8000-000000000000/lineage",
		"/lake/subjects/no-such-key/state",
	} {
		if r := a.admin(path); r.Status != 404 || r.ErrorCode() != "not_found" {
			t.Errorf("%s: %d %s, want 404 not_found", path, r.Status, r.Raw)
		}
	}
	if r := a.admin("/lake/subjects/" + id + "/state?type=ledger.account"); r.Status != 404 || r.ErrorCode() != "not_found" {
		t.Errorf("a user's key folded as an account: %d %s, want 404 not_found", r.Status, r.Raw)
	}
	if r := a.admin("/lake/subjects/no-such-key/events"); r.Status != 200 || len(items(r.Body["events"])) != 0 {
		t.Errorf("audit trail of an unknown key: %d %s, want 200 and none", r.Status, r.Raw)
	}
	if r := a.API("GET", "/lake/events", nil); r.Status != 401 {
		t.Errorf("no token: %d", r.Status)
	}
	if r := a.API("GET", "/lake/events", nil, "Authorization", "Bearer wrong"); r.Status != 401 {
		t.Errorf("wrong token: %d", r.Status)
	}
	off := testenv.StartApp(t, testenv.AppOptions{})
	if r := off.API("GET", "/lake/events", nil, "Authorization", "Bearer x"); r.Status != 403 || r.ErrorCode() != "admin_disabled" {
		t.Errorf("no admin token configured: %d %s", r.Status, r.Raw)
	}
}

// Pages of events follow next_after, filters select, a large limit is
// capped, and NDJSON streams every event.
func TestLakeEventsPagesAndStreams(t *testing.T) {
	a := newLakeApp(t)
	for i := range 3 {
		a.signUpAndActivate(i)
	}
	a.settle()
	var all []map[string]any
	for after := "0"; ; {
		r := a.admin("/lake/events?limit=5&after=" + after)
		page := items(r.Body["events"])
		if r.Status != 200 || len(page) > 5 {
			t.Fatalf("page after %s: %d %s", after, r.Status, r.Raw)
		}
		all = append(all, page...)
		next, _ := r.Body["next_after"].(float64)
		if len(page) == 0 {
			if int(next) != len(all) {
				t.Errorf("an empty page says next_after %v, want %d", next, len(all))
			}
			break
		}
		after = strconv.Itoa(int(next))
	}
	if len(all) != 12 {
		t.Fatalf("%d events by pages, want 12", len(all))
	}
	for i, it := range all {
		if int(it["position"].(float64)) != i+1 || it["stream"] == "" || it["stream_seq"] == nil {
			t.Fatalf("item %d: %v", i, it)
		}
	}
	if r := a.admin("/lake/events?limit=5000"); r.Status != 200 || len(items(r.Body["events"])) != 12 {
		t.Errorf("a limit above 1000 is capped, not refused: %d %s", r.Status, r.Raw)
	}
	if r := a.admin("/lake/events?type=users.account_activated.v1"); len(items(r.Body["events"])) != 3 {
		t.Errorf("by type: %s", r.Raw)
	}
	corr := all[0]["event"].(map[string]any)["correlationid"].(string)
	if r := a.admin("/lake/events?correlation_id=" + corr); len(items(r.Body["events"])) != 4 {
		t.Errorf("by correlation id: %s", r.Raw)
	}
	if r := a.admin("/lake/events?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z"); len(items(r.Body["events"])) != 0 {
		t.Errorf("from/to in 2000: %s", r.Raw)
	}

	req, _ := http.NewRequest("GET", a.URL+"/api/v1/lake/events?after=2", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("NDJSON: %d %s", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		var it struct{ Position int }
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil || it.Position != n+3 {
			t.Fatalf("NDJSON line %d: %q %v", n, sc.Text(), err)
		}
		n++
	}
	if n != 10 {
		t.Errorf("NDJSON after 2: %d lines, want 10", n)
	}
}
