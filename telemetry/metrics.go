// Package telemetry is how Cairn is watched from outside: the Prometheus
// metrics served on /metrics, the OpenTelemetry traces (tracing.go) and
// the trace ids in log lines (logging.go).
//
// Metrics. Every figure is read from the part of Cairn that owns it (the
// relay, the consumer runtime, the pools, the modules' breakers) when
// Prometheus scrapes; nothing is pushed. What costs a query (the outbox
// backlog, JetStream's per-consumer figures, the dead letters) is a Sample
// refreshed at most once a second in the background, so /metrics answers
// within milliseconds whatever the backlog (see sampler). No label takes an
// id, a key or free text: labels are consumer names, route patterns,
// status classes, pool roles, breaker systems and states, all fixed by the
// code, so the number of series depends on the build, not on the traffic.
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options tune Metrics; zero values mean the defaults.
type Options struct {
	// MinRefresh is the age below which a Sample is served as it is
	// (default 1s): scrapes from several Prometheus servers, and the
	// console, share one refresh.
	MinRefresh time.Duration
	// Wait is how long a reader waits for the refresh it started before it
	// takes the previous Sample (default 20ms).
	Wait time.Duration
	// Logger reports figures that could not be read.
	Logger *slog.Logger
	// Registry to register on (default a new one): the app passes the one
	// its HTTP middleware already measures into.
	Registry *prometheus.Registry
}

// Metrics is Cairn's Prometheus registry and the collector of its figures.
type Metrics struct {
	reg     *prometheus.Registry
	src     Sources
	sampler *sampler
}

// NewMetrics returns the metrics of src, with the process's own (CPU,
// memory, file descriptors, goroutines) beside them.
func NewMetrics(src Sources, opt Options) *Metrics {
	if opt.MinRefresh <= 0 {
		opt.MinRefresh = time.Second
	}
	if opt.Wait <= 0 {
		opt.Wait = 20 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Registry == nil {
		opt.Registry = prometheus.NewRegistry()
	}
	m := &Metrics{reg: opt.Registry, src: src, sampler: &sampler{
		relay: src.Relay, consumers: src.Consumers, sagas: src.Sagas, db: src.DB, lake: src.Lake, proj: src.Projections,
		minAge: opt.MinRefresh, wait: opt.Wait,
		timeout: 10 * time.Second, log: opt.Logger.With("component", "metrics"),
	}}
	m.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// The runtime's essentials only: the full set of memstats would be
		// a quarter of the series budget. GOGC and GOMEMLIMIT are settings,
		// not figures (the environment says them), and two series the
		// saga and lake figures needed more.
		collectors.NewGoCollector(collectors.WithGoCollectorMemStatsMetricsDisabled(),
			collectors.WithoutGoCollectorRuntimeMetrics(regexp.MustCompile(`^/gc/(gogc:percent|gomemlimit:bytes)$`))),
		&collector{m: m},
	)
	return m
}

// Registerer is where other parts (the HTTP middleware) add their own.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Gatherer is the registry, for tests and the handler.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the registry in Prometheus's text format (or OpenMetrics,
// when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          slogPrinter{m.sampler.log},
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// Snapshot returns the figures as /metrics would show them now: the
// console renders the very same numbers.
func (m *Metrics) Snapshot(ctx context.Context) Snapshot { return m.snapshot(ctx) }

type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }
