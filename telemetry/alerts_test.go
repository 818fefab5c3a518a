package telemetry_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/testenv"
)

// The alerting rules shipped in deploy/prometheus parse with Prometheus's
// own rule-file parser (YAML, PromQL, templates), and every series they
// name is one a running Cairn exports (or Prometheus's own up), so no rule
// silently watches nothing.
func TestAlertRulesParseAndNameRealSeries(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile("../deploy/prometheus/cairn-alerts.yml", false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if _, err := os.Stat("../deploy/prometheus/prometheus.yml"); err != nil {
		t.Fatal(err)
	}

	smtp := testenv.StartFakeSMTP(t)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.SMTPURL = smtp.URL() }})
	a.API("GET", "/users/nobody", nil)
	// The sampled figures (backlog, consumers, dead letters) are read in
	// the background: the first scrapes of a loaded machine may answer
	// before the first sample is in. Wait for it.
	s := mustScrape(t, a.URL)
	for deadline := time.Now().Add(30 * time.Second); !hasSeries(s, "cairn_consumer_dead_letters") || !hasSeries(s, "cairn_consumer_lag_seconds") || !hasSeries(s, "cairn_outbox_oldest_unpublished_age_seconds"); s = mustScrape(t, a.URL) {
		if time.Now().After(deadline) {
			t.Fatal("no sample of the consumers' figures in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	exported := map[string]bool{"up": true}
	for key := range s {
		name, _, _ := strings.Cut(key, "{")
		exported[strings.TrimSuffix(name, "_count")] = true
	}
	rules := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			rules++
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				t.Fatalf("%s: %v", r.Alert, err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel && !exported[strings.TrimSuffix(strings.TrimSuffix(m.Value, "_bucket"), "_count")] {
						t.Errorf("alert %s watches %s, which Cairn does not export", r.Alert, m.Value)
					}
				}
				return nil
			})
		}
	}
	if rules < 10 {
		t.Errorf("only %d rules", rules)
	}
}

// hasSeries reports whether s has a series of the metric name.
func hasSeries(s scrape, name string) bool {
	for key := range s {
		if n, _, _ := strings.Cut(key, "{"); n == name {
			return true
		}
	}
	return false
}
