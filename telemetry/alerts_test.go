package telemetry_test

import (
	"log/slog"
	"os"
	"strings"
	"testing"

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

	smtp := startFakeSMTP(t)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.SMTPURL = smtp.URL() }})
	a.API("GET", "/users/nobody", nil)
	exported := map[string]bool{"up": true}
	for key := range mustScrape(t, a.URL) {
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
