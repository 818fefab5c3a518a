package lake_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// The state the lake folds for an account as of several moments equals
// what the ledger itself answers as of those moments (its own as_of, read
// from its log), before it was opened (404), and now.
func TestStateAsOfEqualsTheLedger(t *testing.T) {
	a := newLakeApp(t)
	r := a.API("POST", "/accounts", map[string]any{"owner": "Ada", "currency": "EUR"})
	if r.Status != 201 {
		t.Fatalf("open: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	before := time.Now().Add(-time.Hour)
	var instants []time.Time
	moves := []struct {
		path   string
		amount int
	}{{"deposits", 500}, {"deposits", 250}, {"withdrawals", 600}, {"deposits", 1}, {"withdrawals", 151}, {"deposits", 70}}
	for _, m := range moves {
		time.Sleep(15 * time.Millisecond)
		instants = append(instants, time.Now())
		time.Sleep(15 * time.Millisecond)
		if r := a.API("POST", "/accounts/"+id+"/"+m.path, map[string]any{"amount": m.amount}); r.Status != 201 {
			t.Fatalf("%s %d: %d %s", m.path, m.amount, r.Status, r.Raw)
		}
	}
	time.Sleep(15 * time.Millisecond)
	instants = append(instants, time.Now())
	a.settle()

	for _, at := range instants {
		q := "?as_of=" + at.UTC().Format(time.RFC3339Nano)
		ledger := a.API("GET", "/accounts/"+id+q, nil)
		lake := a.admin("/lake/subjects/" + id + "/state" + q)
		if ledger.Status != 200 || lake.Status != 200 {
			t.Fatalf("as of %s: ledger %d %s, lake %d %s", at, ledger.Status, ledger.Raw, lake.Status, lake.Raw)
		}
		st := lake.Body["state"].(map[string]any)
		for _, f := range []string{"owner", "currency", "balance", "version"} {
			if fmt.Sprint(st[f]) != fmt.Sprint(ledger.Body[f]) {
				t.Errorf("as of %s: lake %s = %v, ledger %v", at.Format(time.StampMilli), f, st[f], ledger.Body[f])
			}
		}
		if lake.Body["key"] != id || lake.Body["type"] != "ledger.account" {
			t.Errorf("as of %s: %s", at, lake.Raw)
		}
	}
	q := "?as_of=" + before.UTC().Format(time.RFC3339)
	if r := a.admin("/lake/subjects/" + id + "/state" + q); r.Status != 404 || r.ErrorCode() != "not_found" {
		t.Errorf("state before the account was opened: %d %s", r.Status, r.Raw)
	}
	now := a.admin("/lake/subjects/" + id + "/state")
	var st struct{ Balance, Version int64 }
	raw, _ := json.Marshal(now.Body["state"])
	if err := json.Unmarshal(raw, &st); err != nil || st.Balance != 70 || st.Version != 6 {
		t.Errorf("state now: %s, want balance 70 at version 6", now.Raw)
	}
}

// A user's state follows sign-up and activation.
func TestUserStateAsOf(t *testing.T) {
	a := newLakeApp(t)
	id, _ := a.signUpAndActivate(7)
	a.settle()
	r := a.admin("/lake/subjects/" + id + "/state")
	st, _ := r.Body["state"].(map[string]any)
	if r.Status != 200 || r.Body["type"] != "users.user" || st["username"] != "user7" || st["email"] != "user7@example.com" || st["status"] != "active" {
		t.Fatalf("state of a user: %d %s", r.Status, r.Raw)
	}
	var created string
	for _, it := range items(a.admin("/lake/subjects/" + id + "/events").Body["events"]) {
		if it["event"].(map[string]any)["type"] == "users.account_created.v1" {
			created = it["event"].(map[string]any)["time"].(string)
		}
	}
	r = a.admin("/lake/subjects/" + id + "/state?as_of=" + created)
	if st, _ := r.Body["state"].(map[string]any); r.Status != 200 || st["status"] != "pending" {
		t.Fatalf("state as of the sign-up: %d %s", r.Status, r.Raw)
	}
}
