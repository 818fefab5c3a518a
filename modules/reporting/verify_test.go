package reporting_test

import (
	"context"
	"fmt"
	"strconv"
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
	for _, s := range reporting.Specs(reporting.Options{}) {
		waitMetric(t, a, fmt.Sprintf(`cairn_projection_live_version{projection=%q}`, s.Name), 1)
		waitMetric(t, a, fmt.Sprintf(`cairn_projection_failed_versions{projection=%q}`, s.Name), 0)
		waitMetric(t, a, fmt.Sprintf(`cairn_projection_lag_events{projection=%q}`, s.Name), 0)
	}
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
	// What an operator's alert sees: one failed version, version 1 still live.
	waitMetric(t, a, `cairn_projection_failed_versions{projection="reporting_accounts"}`, 1)
	waitMetric(t, a, `cairn_projection_live_version{projection="reporting_accounts"}`, 1)
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

// waitMetric waits until GET /metrics has series (name and labels, as
// written there) at want, failing after 10 s (the figures are sampled
// at most once a second) with the value last seen.
func waitMetric(t *testing.T, a *testenv.App, series string, want float64) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r := testenv.Do(t, "GET", a.URL+"/metrics", nil)
		last = "absent"
		for _, line := range strings.Split(r.Raw, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				last = v
				if f, err := strconv.ParseFloat(v, 64); err == nil && f == want {
					return
				}
			}
		}
	}
	t.Fatalf("%s is %s, want %v", series, last, want)
}
