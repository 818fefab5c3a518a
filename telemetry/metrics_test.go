package telemetry_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/cairn-dev/cairn/testenv"
)

// /metrics of the whole app, every module on, after every API route was
// called: names follow Prometheus's conventions (promlint finds nothing),
// all are cairn_ but the process's and the Go runtime's own, and there are
// fewer than 500 series.
func TestMetricsFollowConventionsAndStaySmall(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	callEveryRoute(t, a)
	a.Drain()
	r := testenv.Do(t, "GET", a.URL+"/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d %s", r.Status, r.Raw)
	}
	problems, err := promlint.New(strings.NewReader(r.Raw)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	series, consumerSeries, routeClasses := 0, 0, 0
	consumers := map[string]bool{}
	for _, line := range strings.Split(r.Raw, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series++
		if m := consumerLabel.FindStringSubmatch(line); m != nil {
			consumerSeries++
			consumers[m[1]] = true
		}
		if strings.HasPrefix(line, "cairn_http_request_duration_seconds_count{") {
			routeClasses++
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if !strings.HasPrefix(name, "cairn_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "go_") {
			t.Errorf("series %s is not cairn_ (nor process_ or go_)", name)
		}
	}
	if series >= 500 {
		t.Errorf("%d series; the budget is 500", series)
	}
	// Every module the issues name is on (users, mail, ledger, the four
	// order modules, reporting, replay and forgetting: 23 consumers). This
	// configuration has no SMTP server nor payment gateway, whose circuit
	// breakers add a series per state each when they are set: the budget
	// must hold with them too.
	const breakerSeries = 2 * 3
	perConsumer := consumerSeries / max(1, len(consumers))
	projected := series + breakerSeries
	t.Logf("%d series: %d consumer(s) × %d, %d route×class × 2, %d others; with both breakers: %d",
		series, len(consumers), perConsumer, routeClasses, series-consumerSeries-2*routeClasses, projected)
	if projected >= 500 {
		t.Errorf("%d series with both breakers configured; the budget is 500", projected)
	}
}

var consumerLabel = regexp.MustCompile(`consumer="([^"]+)"`)

// callEveryRoute calls every route of the app once with made-up path
// parameters and an empty body (mostly a 4xx), and a few with a good
// request (2xx): each route then has the series of two status classes,
// more than most ever get.
func callEveryRoute(t *testing.T, a *testenv.App) {
	t.Helper()
	params := regexp.MustCompile(`:[a-z_]+`)
	for _, rt := range a.App.Routes() {
		if rt.Method == "echo_route_not_found" || strings.Contains(rt.Path, "*") {
			continue
		}
		path := params.ReplaceAllString(rt.Path, "0193a3b0-0000-7000-8000-000000000000")
		testenv.Do(t, rt.Method, a.URL+path, map[string]any{})
	}
	r := a.API("POST", "/users", map[string]string{"username": "Ada", "email": "ada@example.com", "password": "correct horse battery"})
	id := a.API("POST", "/accounts", map[string]string{"owner": "Ada", "currency": "EUR"}).Body["id"]
	if r.Status != 201 || id == nil {
		t.Fatalf("sign-up %d, account %v", r.Status, id)
	}
	a.API("POST", "/accounts/"+id.(string)+"/deposits", map[string]int{"amount": 100})
	a.API("GET", "/accounts/"+id.(string), nil)
}
