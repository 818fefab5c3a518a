package web

import (
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
)

// No path that is not a route reaches a handler: a parameter at the end of
// a route must not swallow further segments, whichever module's route it
// is. The routes are the shapes the modules register (users, ledger, the
// dead-letter admin); integration_test checks the real modules' routes.
func TestUnknownPathsUnderARouteAre404(t *testing.T) {
	e := NewServer(slog.New(slog.DiscardHandler))
	reached := map[string]string{}
	h := func(c echo.Context) error {
		reached[c.Request().Method+" "+c.Request().URL.Path] = c.Path()
		return c.NoContent(204)
	}
	api := e.Group("/api/v1")
	api.POST("/users", h)
	api.POST("/users/activate", h)
	api.GET("/users/:id", h)
	api.GET("/accounts/:id", h)
	api.POST("/accounts/:id/deposits", h)
	api.GET("/accounts/:id/events", h)
	admin := e.Group("/api/v1/admin")
	admin.POST("/dead-letters/:id/retry", h)
	admin.DELETE("/dead-letters/:id", h)
	e.GET("/static/*", h)

	const id = "0193a0b2-7c4e-7000-8000-000000000000"
	unknown := []struct{ method, path string }{
		{"GET", "/api/v1/users/" + id + "/no-such-thing"},
		{"GET", "/api/v1/users/" + id + "/"},
		{"GET", "/api/v1/users/" + id + "/a/b/c"},
		{"POST", "/api/v1/users/activate/again"},
		{"GET", "/api/v1/accounts/" + id + "/no-such-thing"},
		{"GET", "/api/v1/accounts/" + id + "/events/more"},
		{"POST", "/api/v1/accounts//deposits"},
		{"DELETE", "/api/v1/admin/dead-letters/" + id + "/no-such-thing"},
		{"GET", "/api/v1/admin/dead-letters/" + id + "/no-such-thing"},
		{"POST", "/api/v1/admin/dead-letters/" + id + "/retry/now"},
		{"GET", "/api/v1/no-such-module"},
	}
	for _, u := range unknown {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(u.method, u.path, nil))
		if rec.Code != 404 || !jsonCode(t, rec, "not_found") {
			t.Errorf("%s %s: %d %s, want 404 not_found", u.method, u.path, rec.Code, rec.Body)
		}
	}
	if len(reached) > 0 {
		t.Errorf("unknown paths reached handlers: %v", reached)
	}

	known := []struct{ method, path string }{
		{"GET", "/api/v1/users/" + id},
		{"GET", "/api/v1/accounts/" + id + "/events"},
		{"POST", "/api/v1/accounts/" + id + "/deposits"},
		{"DELETE", "/api/v1/admin/dead-letters/" + id},
		{"GET", "/static/css/site.css"}, // a wildcard takes the rest on purpose
	}
	for _, k := range known {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(k.method, k.path, nil))
		if rec.Code != 204 {
			t.Errorf("%s %s: %d %s, want the handler", k.method, k.path, rec.Code, rec.Body)
		}
	}
}

func jsonCode(t *testing.T, rec *httptest.ResponseRecorder, code string) bool {
	t.Helper()
	var body ErrorBody
	return json.Unmarshal(rec.Body.Bytes(), &body) == nil && body.Error.Code == code
}
