package integration_test

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// allRoutes builds every shipped module on one server, as the app does,
// with the console and health routes.
func allRoutes(t *testing.T) *echo.Echo {
	t.Helper()
	db := testenv.MustDB(t)
	log := slog.New(slog.DiscardHandler)
	e := web.NewServer(log)
	deps := modules.Deps{Pool: db.Pool, API: e.Group("/api/v1"), Pages: e.Group(""), Log: log, Config: config.Default(), Consumers: &outbox.Subscriptions{}}
	for _, def := range []modules.Definition{users.Definition, mail.Definition, ledger.Definition} {
		if _, err := def.Build(deps); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// Every route of every module, called with a method it does not have,
// answers 405 method_not_allowed in the error shape, with Allow; none
// reaches a handler of another route (GET /users/activate is not a user id).
func TestWrongMethodOnEveryRouteIs405(t *testing.T) {
	e := allRoutes(t)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	methods := map[string][]string{}
	for _, r := range e.Routes() {
		if strings.HasPrefix(r.Path, "/api/v1/") && !strings.HasPrefix(r.Method, "echo_") {
			methods[r.Path] = append(methods[r.Path], r.Method)
		}
	}
	checked := 0
	for path, have := range methods {
		concrete := pathParam.ReplaceAllString(path, someID)
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if slices.Contains(have, m) {
				continue
			}
			got := testenv.Do(t, m, srv.URL+concrete, nil)
			if got.Status != 405 || got.ErrorCode() != "method_not_allowed" || got.Header.Get("Allow") == "" {
				t.Errorf("%s %s (a %v route): %d %s Allow=%q, want 405 method_not_allowed", m, concrete, have, got.Status, got.Raw, got.Header.Get("Allow"))
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d method/route pairs", checked)
	}
}

// README.md's table of answers names every route the modules register, so
// a new endpoint cannot go undocumented.
func TestReadmeTableNamesEveryRoute(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range allRoutes(t).Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || strings.HasPrefix(r.Method, "echo_") {
			continue
		}
		if !strings.Contains(string(readme), "| `"+r.Method+" "+r.Path) {
			t.Errorf("README.md's table of answers has no row for %s %s", r.Method, r.Path)
		}
	}
}
