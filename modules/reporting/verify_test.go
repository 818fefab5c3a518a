package reporting_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/testenv"
)

// A deliberately wrong new version (the accounts' deposited sum off by one
// on the USD rows) is detected by verification against the lake, is not
// switched (the reports keep answering from version 1), and the report,
// on GET /api/v1/admin/projections, names the rows that differ.
func TestWrongVersionIsDetectedNotSwitchedAndNamed(t *testing.T) {
	ctx := context.Background()
	const token = "verify-test-token"
	a := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{reporting.Definition},
		RelayDeleteDelay: time.Millisecond, Config: func(c *config.Config) { c.AdminToken = token }})
	if err := publish(ctx, a.DB.Pool, history(31, 300), 200, 0); err != nil {
		t.Fatal(err)
	}
	waitLive(t, a, 1, 2*time.Minute)
	wrong := func(s *projection.Spec) {
		if s.Name != "reporting_accounts" {
			return
		}
		const right = `count(*) FILTER (WHERE kind = 'deposit'), coalesce(sum(amount) FILTER (WHERE kind = 'deposit'), 0),`
		for i, q := range s.Apply {
			if !strings.Contains(q, right) {
				t.Fatal("the accounts projection's apply changed: update this test's mistake")
			}
			s.Apply[i] = strings.Replace(q, right, `count(*) FILTER (WHERE kind = 'deposit'),
				coalesce(sum(amount) FILTER (WHERE kind = 'deposit'), 0) + CASE WHEN currency = 'USD' THEN 1 ELSE 0 END,`, 1)
		}
	}
	startNewBinary(t, a, allAt(2, wrong), "wrong", projection.Options{})
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		st, _, _ := versionState(t, a.DB.Pool, "reporting_accounts", 2)
		if st == "failed" {
			break
		}
		if st == "live" || time.Now().After(deadline) {
			t.Fatalf("the wrong version is %q, not failed:\n%s", st, statusOf(t, a))
		}
	}
	r := a.API("GET", "/admin/projections", nil, "Authorization", "Bearer "+token)
	if r.Status != 200 {
		t.Fatalf("admin/projections: %d %s", r.Status, r.Raw)
	}
	var found bool
	for _, p := range r.Body["projections"].([]any) {
		p := p.(map[string]any)
		if p["name"] != "reporting_accounts" {
			continue
		}
		if p["live_version"] != 1.0 {
			t.Errorf("live version %v, want 1", p["live_version"])
		}
		for _, v := range p["versions"].([]any) {
			v := v.(map[string]any)
			if v["version"] != 2.0 {
				continue
			}
			found = true
			rep, _ := v["last_verification"].(map[string]any)
			check := rep["checks"].([]any)[0].(map[string]any)
			rows := check["rows"].([]any)
			if v["state"] != "failed" || rep["ok"] != false || len(rows) == 0 {
				t.Fatalf("version 2: %v", v)
			}
			for _, row := range rows {
				key := row.(map[string]any)["key"].(map[string]any)
				if key["currency"] != "USD" {
					t.Errorf("a row named that is not wrong: %v", row)
				}
			}
			t.Logf("named: %v; error: %v", rows, v["error"])
		}
	}
	if !found {
		t.Fatalf("version 2 of reporting_accounts not shown: %s", r.Raw)
	}
	var accs reporting.DailyAccounts
	if err := getJSON(a.URL, "/reports/accounts/daily", &accs); err != nil || accs.Reflects.Version != 1 {
		t.Errorf("the accounts report answered from version %d (%v), want 1", accs.Reflects.Version, err)
	}
}
