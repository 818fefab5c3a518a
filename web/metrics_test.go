package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Requests are counted by route pattern and status class, the answer the
// error handler wrote included; paths no route matches, odd methods and
// made-up ids all land on a fixed set of label values.
func TestHTTPMetricsLabelsAreBounded(t *testing.T) {
	e := NewServer(slog.New(slog.DiscardHandler))
	reg := prometheus.NewRegistry()
	InstrumentHTTP(e, reg)
	e.GET("/api/v1/things/:id", func(c echo.Context) error {
		if c.Param("id") == "bad" {
			return echo.NewHTTPError(http.StatusBadRequest, "bad id")
		}
		return c.NoContent(http.StatusOK)
	})
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/things/1"}, {"GET", "/api/v1/things/2"}, {"GET", "/api/v1/things/bad"},
		{"GET", "/no/such/path/1"}, {"GET", "/no/such/path/2"}, {"BREW", "/api/v1/things/3"},
		{"GET", "/api/v1/things/1/extra"},
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(r.method, r.path, nil))
		_, _ = io.Copy(io.Discard, rec.Body)
	}
	got, err := testutil.GatherAndCount(reg, "cairn_http_request_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	mfs, _ := reg.Gather()
	var labels []string
	for _, mf := range mfs {
		if mf.GetName() != "cairn_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			labels = append(labels, strings.Join(l, ",")+" "+strconv.FormatUint(m.GetSummary().GetSampleCount(), 10))
		}
	}
	wantLabels := []string{
		"route=GET /api/v1/things/:id,status_class=2xx 2",
		"route=GET /api/v1/things/:id,status_class=4xx 2",   // "bad", and the extra segment (404)
		"route=OTHER /api/v1/things/:id,status_class=4xx 1", // BREW: 405
		"route=unmatched,status_class=4xx 2",                // two unknown paths
	}
	if got != len(wantLabels) || strings.Join(labels, "\n") != strings.Join(wantLabels, "\n") {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(labels, "\n"), strings.Join(wantLabels, "\n"))
	}
}
