// Package console is the operator console, served by the binary under
// /console behind the admin token: an overview (relay, readiness,
// breakers), the consumers (their backlog, lag and counters; pause and
// resume), the dead letters (filter, inspect, retry or discard one or in
// bulk), the events (look up by id, key or correlation id; a live tail over
// Server-Sent Events), an event's lineage (its causation tree, from the
// lake), the sagas (by type and status; one whole, retry, cancel), the
// lake (its mover's backlog and errors, its head, its exporter), the
// projections (each one's versions, their state and lag), the replays
// (recent runs; one with a dry run's effects) and the reports (daily
// sales and stock as charts, refreshed live). Pages
// are rendered on the server with html/template; a small script of its own
// runs the live tail, another the reports' refresh. Nothing is loaded from
// elsewhere. Every figure comes from the same telemetry.Snapshot /metrics
// renders.
package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/outbox/lookup"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/web"
)

// Options are what the console shows and acts on.
type Options struct {
	// Token is CAIRN_ADMIN_TOKEN; empty turns the console off.
	Token     string
	Version   string
	Holder    string // this replica, as leases name it
	Consumers *consumer.Runtime
	Metrics   *telemetry.Metrics
	// Checks are the readiness conditions.
	Checks []web.Checker
	// Finder looks events up: lookup.Lake, or lookup.Recent with the lake
	// off.
	Finder lookup.Finder
	// Tail follows events live (lookup.Tail on Cairn's connection).
	Tail func(ctx context.Context, filter string, fn func(lookup.Event)) error
	Log  *slog.Logger
	// Sagas and DB are the saga registry and the database its instances
	// are in: the Sagas pages list, show, retry and cancel them.
	Sagas *saga.Registry
	DB    *pgxpool.Pool
	// Lake is the lake's mover, nil with CAIRN_LAKE=off; Exporter the
	// lake's exporter, nil with exporting off, writing to ExportTarget.
	Lake         *lake.Mover
	Exporter     *export.Exporter
	ExportTarget string
	// Started is when this replica's counters (the relay's published and
	// publish errors, the consumers' counts) started from zero.
	Started time.Time
	// Reports are the reporting module's queries; nil without the module.
	Reports Reports
	// Projections is the projection runtime: the Projections page shows
	// its status.
	Projections *projection.Runtime
}

// Console serves the pages.
type Console struct {
	Options
	token string
	sess  sessions
	tmpl  map[string]*template.Template
	rates rates
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Register adds the console's routes to e under /console.
func Register(e *echo.Echo, o Options) *Console {
	con := &Console{Options: o, token: o.Token, sess: newSessions(o.Token), tmpl: parseTemplates()}
	static, _ := fs.Sub(staticFS, "static")
	e.GET("/console/static/*", echo.WrapHandler(http.StripPrefix("/console/static/", http.FileServer(http.FS(static)))))
	e.GET("/console/login", con.handleLoginPage)
	e.POST("/console/login", con.handleLogin)
	g := e.Group("/console", con.require)
	g.POST("/logout", con.handleLogout)
	g.GET("/", con.handleOverview)
	g.GET("/consumers", con.handleConsumers)
	g.POST("/consumers/:name/pause", con.handlePause)
	g.POST("/consumers/:name/resume", con.handleResume)
	g.GET("/dead-letters", con.handleDeadLetters)
	g.POST("/dead-letters/confirm", con.handleBulkConfirm)
	g.POST("/dead-letters/bulk", con.handleBulk)
	g.GET("/dead-letters/:id", con.handleDeadLetter)
	g.POST("/dead-letters/:id/retry", con.handleRetryOne)
	g.POST("/dead-letters/:id/discard", con.handleDiscardOne)
	g.GET("/events", con.handleEvents)
	g.GET("/events/tail", con.handleTail)
	g.GET("/lineage/:id", con.handleLineage)
	g.GET("/lake", con.handleLake)
	g.GET("/projections", con.handleProjections)
	g.GET("/replays", con.handleReplays)
	g.GET("/replays/:id", con.handleReplay)
	g.GET("/sagas", con.handleSagas)
	g.GET("/sagas/:type/:id", con.handleSaga)
	g.POST("/sagas/:type/:id/retry", con.handleSagaAction("retry"))
	g.POST("/sagas/:type/:id/cancel", con.handleSagaAction("cancel"))
	g.GET("/reports", con.handleReports)
	g.GET("/reports/live", con.handleReportsLive)
	e.GET("/console", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/console/") })
	return con
}

var funcs = template.FuncMap{
	"age":     age,
	"num":     func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"rate":    func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	"seconds": func(d time.Duration) float64 { return d.Seconds() },
	"unix":    func(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"label": func(v any) string { return strings.ReplaceAll(fmt.Sprint(v), "_", " ") },
	"list":  func(v ...string) []string { return v },
	"has": func(list []string, s string) bool {
		for _, v := range list {
			if v == s {
				return true
			}
		}
		return false
	},
	"series": func(name string, labels ...string) string {
		var ls []string
		for i := 0; i+1 < len(labels); i += 2 {
			ls = append(ls, labels[i]+"="+strconv.Quote(labels[i+1]))
		}
		if len(ls) == 0 {
			return name
		}
		return name + "{" + strings.Join(ls, ",") + "}"
	},
}

func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	pages, _ := fs.Glob(templateFS, "templates/*.html")
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(layout.Clone()).ParseFS(templateFS, p))
	}
	return out
}

// page is what every page template gets.
type page struct {
	Title   string
	Nav     string
	Version string
	CSRF    string
	Flash   string
	Data    any
}

// render writes a page inside the layout.
func (con *Console) render(c echo.Context, status int, name string, data any) error {
	return con.renderFlash(c, status, name, "", data)
}

func (con *Console) renderFlash(c echo.Context, status int, name, flash string, data any) error {
	t, ok := con.tmpl[name]
	if !ok {
		return fmt.Errorf("console: no template %s", name)
	}
	csrf, _ := c.Get("csrf").(string)
	var buf bytes.Buffer
	p := page{Title: titles[name], Nav: name, Version: con.Version, CSRF: csrf, Flash: flash, Data: data}
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "+
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	return c.HTMLBlob(status, buf.Bytes())
}

var titles = map[string]string{
	"login": "Log in", "overview": "Overview", "consumers": "Consumers", "deadletters": "Dead letters",
	"deadletter": "Dead letter", "confirm": "Confirm", "results": "Results", "events": "Events", "lineage": "Lineage",
	"sagas": "Sagas", "saga": "Saga", "lake": "Lake", "reports": "Reports",
	"projections": "Projections", "replays": "Replays", "replay": "Replay",
}

// age formats seconds for people: "4.2s", "3m 07s", "2h 05m", "3d 04h".
func age(sec float64) string {
	if math.IsNaN(sec) || sec < 0 {
		sec = 0
	}
	switch {
	case sec < 60:
		return fmt.Sprintf("%.1fs", sec)
	case sec < 3600:
		s := int64(sec)
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case sec < 86400:
		m := int64(sec) / 60
		return fmt.Sprintf("%dh %02dm", m/60, m%60)
	}
	h := int64(sec) / 3600
	return fmt.Sprintf("%dd %02dh", h/24, h%24)
}
