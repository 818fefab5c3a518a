package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/testenv"
)

var (
	projectionSection = regexp.MustCompile(`<section class="card" aria-labelledby="[^"]+" data-projection="([^"]+)" data-live="(\d*)" data-previous="(\d*)" data-this-build="(\d*)">`)
	versionRow        = regexp.MustCompile(`<tr data-version="(\d+)" data-state="([a-z_]+)" data-lag-events="(-?\d+)" data-lag-seconds="[^"]*">`)
)

// projectionFigures reads what the Projections page shows: per
// projection its live, previous and this build's version, then each
// version's number and state, in order.
func projectionFigures(page string) []string {
	var out []string
	sections := projectionSection.FindAllStringSubmatchIndex(page, -1)
	for i, s := range sections {
		end := len(page)
		if i+1 < len(sections) {
			end = sections[i+1][0]
		}
		line := fmt.Sprintf("%s live=%s previous=%s build=%s", page[s[2]:s[3]], page[s[4]:s[5]], page[s[6]:s[7]], page[s[8]:s[9]])
		for _, v := range versionRow.FindAllStringSubmatch(page[s[1]:end], -1) {
			line += fmt.Sprintf(" v%s:%s", v[1], v[2])
		}
		out = append(out, line)
	}
	return out
}

// adminFigures reads the same from GET /api/v1/admin/projections.
func adminFigures(t *testing.T, a *testenv.App) []string {
	t.Helper()
	r := a.API("GET", "/admin/projections", nil, "Authorization", "Bearer "+token)
	if r.Status != 200 {
		t.Fatalf("GET /admin/projections: %d %s", r.Status, r.Raw)
	}
	var st struct{ Projections []projection.Status }
	if err := json.Unmarshal([]byte(r.Raw), &st); err != nil {
		t.Fatal(err)
	}
	opt := func(v *int) string {
		if v == nil {
			return ""
		}
		return fmt.Sprint(*v)
	}
	var out []string
	for _, p := range st.Projections {
		line := fmt.Sprintf("%s live=%s previous=%s build=%s", p.Name, opt(p.LiveVersion), opt(p.PreviousVersion), opt(p.ThisBuild))
		for _, v := range p.Versions {
			line += fmt.Sprintf(" v%d:%s", v.Version, v.State)
		}
		out = append(out, line)
	}
	return out
}

// allLive waits until every projection's live version is the one this
// build declares, and returns their names.
func allLive(t *testing.T, a *testenv.App) []string {
	t.Helper()
	var names []string
	waitFor(t, "every projection to go live", func() bool {
		st, err := a.Projections().Status(context.Background())
		if err != nil || len(st) == 0 {
			return false
		}
		names = names[:0]
		for _, p := range st {
			if p.LiveVersion == nil || p.ThisBuild == nil || *p.LiveVersion != *p.ThisBuild {
				return false
			}
			names = append(names, p.Name)
		}
		return true
	})
	return names
}

// The Projections page shows what GET /api/v1/admin/projections answers:
// once the reporting module's projections are live, it names each with
// its live version, this build's version and each version's state. After
// a build that bumps reporting_stock to version 2, that one shows v2 live,
// v1 kept as the previous version (retired); with its pointer cleared, it
// says it has no live version.
func TestConsoleProjectionsPage(t *testing.T) {
	first := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond,
		Config: func(c *config.Config) { c.AdminToken = token }})
	allLive(t, first)
	first.Close()
	// The next build declares reporting_stock v2: it is built beside v1,
	// verified and switched to.
	mods := app.Modules()
	for i := range mods {
		if mods[i].Name == "reporting" {
			mods[i] = reporting.Define(reporting.Options{Versions: map[string]int{"reporting_stock": 2}})
		}
	}
	a := testenv.StartApp(t, testenv.AppOptions{Modules: mods, DB: first.DB, NATS: first.NATS, RelayDeleteDelay: time.Millisecond,
		Config: func(c *config.Config) { c.AdminToken = token }})
	ctx := context.Background()
	names := allLive(t, a)
	if !slices.Contains(names, "reporting_daily_sales") || !slices.Contains(names, "reporting_stock") {
		t.Fatalf("the live projections: %v", names)
	}

	b := newBrowser(t, a.URL)
	b.login()
	page := b.page("/console/projections")
	got, want := projectionFigures(page), adminFigures(t, a)
	if len(got) != len(names) || !slices.Equal(got, want) {
		t.Fatalf("the page shows\n%s\nthe admin API answers\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), page)
	}
	for _, line := range got {
		if !strings.Contains(line, ":live") {
			t.Errorf("no live version shown: %s", line)
		}
	}
	if !slices.Contains(got, "reporting_stock live=2 previous=1 build=2 v2:live v1:retired") {
		t.Errorf("reporting_stock after the bump: %q", got)
	}
	t.Logf("the page:\n%s", strings.Join(got, "\n"))
	for _, want := range []string{`href="/console/projections" aria-current="page"`, "cairn projection rollback", "cairn projection rebuild"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}

	// With its pointer cleared, a projection has no live version; the
	// page says so. (The pointer is put back at once.)
	var live int
	if err := a.DB.Pool.QueryRow(ctx, `UPDATE projection.projections p SET live_version = NULL FROM projection.projections o
		WHERE p.name = o.name AND p.name = 'reporting_stock' RETURNING o.live_version`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	page = b.page("/console/projections")
	if _, err := a.DB.Pool.Exec(ctx, `UPDATE projection.projections SET live_version = $1 WHERE name = 'reporting_stock'`, live); err != nil {
		t.Fatal(err)
	}
	shown := projectionFigures(page)
	i := slices.IndexFunc(shown, func(s string) bool { return strings.HasPrefix(s, "reporting_stock ") })
	if i < 0 || !strings.HasPrefix(shown[i], "reporting_stock live= ") || !strings.Contains(page, "none yet") {
		t.Fatalf("reporting_stock without a live version: %q\n%s", shown, page)
	}
}
