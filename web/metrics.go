package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// httpBuckets bracket an API's answers, from a cached read to a request
// about to time out.
var httpBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// InstrumentHTTP measures every request e serves, in two metrics:
//
//   - cairn_http_request_duration_seconds{route, status_class}: a summary
//     without quantiles, so two series per route and class: the rate and
//     the mean time of each route's answers, by route pattern ("GET
//     /api/v1/users/:id", never the path) and status class ("2xx");
//   - cairn_http_request_latency_seconds: a histogram of the answers of
//     every route that did not fail (status below 400), for percentiles
//     and latency alerts. Failed answers' times are in the summary; a
//     histogram per status class cost 26 series more for percentiles
//     nobody alerts on.
//
// A histogram per route and class would be 13 series each: with every
// module on that alone is over the 500-series budget. A request no route
// matched is route "unmatched", and the console's pages are route "console".
// It wraps the router (echo's Pre), so the
// answer the error handler writes is the one counted.
func InstrumentHTTP(e *echo.Echo, reg prometheus.Registerer) {
	byRoute := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name: "cairn_http_request_duration_seconds",
		Help: "Time to answer HTTP requests, by route pattern and status class (count and sum: rate and mean).",
	}, []string{"route", "status_class"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_http_request_latency_seconds",
		Help:    "Time to answer HTTP requests of every route that did not fail (status below 400), for percentiles.",
		Buckets: httpBuckets,
	})
	reg.MustRegister(byRoute, latency)
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			took, class := time.Since(start).Seconds(), statusClass(c.Response().Status)
			byRoute.WithLabelValues(metricRoute(c), class).Observe(took)
			if c.Response().Status < http.StatusBadRequest {
				latency.Observe(took)
			}
			return nil
		}
	})
}

// metricRoute is routeLabel, but the operator console's pages (/console/…)
// are one route, "console": operators' clicks are not worth a dozen route
// series each in the budget of 500.
func metricRoute(c echo.Context) string {
	if strings.HasPrefix(c.Path(), "/console") {
		return "console"
	}
	return routeLabel(c)
}

// routeLabel is the method and route pattern of the request, from a fixed
// set: the routes the code registered.
func routeLabel(c echo.Context) string {
	path := c.Path()
	if path == "" {
		return "unmatched"
	}
	return knownMethod(c.Request().Method) + " " + path
}

// knownMethod keeps a client from minting label values with methods of its
// own.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// RegisterMetrics serves h (the Prometheus registry) on GET /metrics. It is
// open like /healthz: the series carry no ids, keys or personal data; keep
// the port off the internet as you would the rest of the admin surface.
func RegisterMetrics(e *echo.Echo, h http.Handler) {
	e.GET("/metrics", echo.WrapHandler(h))
}
