package telemetry_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairn-dev/cairn/testenv"
)

// scrape is one answer of /metrics: every sample by `name{label="value",…}`
// (labels sorted), histograms and summaries by their _count and _sum.
type scrape map[string]float64

func mustScrape(t *testing.T, base string) scrape {
	t.Helper()
	r := testenv.Do(t, "GET", base+"/metrics", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d %s", r.Status, r.Raw)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.Raw))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := scrape{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetSummary() != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetSummary().GetSampleCount())
			case m.GetHistogram() != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// get returns a series' value, failing the test when it is not exported.
func (s scrape) get(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := s[key]
	if !ok {
		t.Fatalf("/metrics has no series %s", key)
	}
	return v
}
