package integration_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/customers"
	"github.com/cairn-dev/cairn/modules/inventory"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/orders"
	"github.com/cairn-dev/cairn/modules/payments"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

const someID = "0193a0b2-7c4e-7000-8000-000000000000"

var pathParam = regexp.MustCompile(`:[^/]+`)

// Every route every module registers under /api/v1, with a path segment
// more than the route has (or an empty parameter), answers 404 not_found
// and reaches no handler: no unknown path is handed to a module as an id.
func TestUnknownPathsUnderEveryModuleRouteAre404(t *testing.T) {
	db := testenv.MustDB(t)
	log := slog.New(slog.DiscardHandler)
	e := web.NewServer(log)
	deps := modules.Deps{Pool: db.Pool, API: e.Group("/api/v1"), Log: log, Config: config.Default(), Consumers: &outbox.Subscriptions{}}
	for _, def := range []modules.Definition{users.Definition, mail.Definition, ledger.Definition, customers.Definition, inventory.Definition, payments.Definition, orders.Definition} {
		if _, err := def.Build(deps); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	// isRoute reports whether path is the shape of a registered route (an
	// id where the route has a parameter): that is a known path.
	isRoute := func(path string) bool {
		for _, r := range e.Routes() {
			want, got := strings.Split(r.Path, "/"), strings.Split(path, "/")
			if len(want) != len(got) {
				continue
			}
			same := true
			for i := range want {
				same = same && (want[i] == got[i] || strings.HasPrefix(want[i], ":") && got[i] != "")
			}
			if same {
				return true
			}
		}
		return false
	}
	checked := map[string]bool{}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") || strings.Contains(r.Path, "*") || strings.HasPrefix(r.Method, "echo_") {
			continue
		}
		full := pathParam.ReplaceAllString(r.Path, someID)
		unknown := []string{full + "/no-such-thing", full + "/", full + "/a/b"}
		if strings.Contains(r.Path, ":") {
			unknown = append(unknown, pathParam.ReplaceAllString(r.Path, ""))
		}
		for _, path := range unknown {
			if isRoute(path) {
				continue
			}
			for _, method := range []string{r.Method, "GET"} {
				got := testenv.Do(t, method, srv.URL+path, nil)
				if got.Status != 404 || got.ErrorCode() != "not_found" {
					t.Errorf("%s %s (beside route %s %s): %d %s, want 404 not_found", method, path, r.Method, r.Path, got.Status, got.Raw)
				}
			}
		}
		checked[r.Path] = true
	}
	// The routes the issue named are among those checked.
	for _, want := range []string{"/api/v1/users/:id", "/api/v1/accounts/:id", "/api/v1/accounts/:id/deposits", "/api/v1/mail/messages"} {
		if !checked[want] {
			t.Errorf("route %s was not checked (routes: %v)", want, checked)
		}
	}
}

// The real binary answers 404 for an unknown path below a user and below a
// dead letter (the admin group has middleware of its own).
func TestUnknownPathBelowAnIDIs404(t *testing.T) {
	db := testenv.MustDB(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL": db.URL,
		"CAIRN_NATS_LISTEN":  fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"CAIRN_ADMIN_TOKEN":  "admin-secret",
	})
	auth := []string{"Authorization", "Bearer admin-secret"}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/users/" + someID + "/no-such-thing"},
		{"GET", "/api/v1/accounts/" + someID + "/no-such-thing"},
		{"DELETE", "/api/v1/admin/dead-letters/" + someID + "/no-such-thing"},
		{"GET", "/api/v1/admin/dead-letters/" + someID + "/no-such-thing"},
	} {
		got := testenv.Do(t, c.method, p.HTTP+c.path, nil, auth...)
		if got.Status != 404 || got.ErrorCode() != "not_found" {
			t.Errorf("%s %s: %d %s, want 404 not_found", c.method, c.path, got.Status, got.Raw)
		}
	}
	// A known path still reaches its handler.
	if got := testenv.Do(t, "GET", p.HTTP+"/api/v1/users/"+someID, nil); got.Status != 404 || !strings.Contains(got.Raw, "no such user") {
		t.Errorf("GET a missing user: %d %s, want the users module's 404", got.Status, got.Raw)
	}
	_ = p.Stop(30 * time.Second)
}

// Sentinels of different modules are different errors even when they share
// a kind and a code; a narrower sentinel still matches the one it narrows.
func TestModuleSentinelsAreDistinct(t *testing.T) {
	notFounds := map[string]error{
		"ledger.ErrNotFound":             ledger.ErrNotFound,
		"users.ErrNotFound":              users.ErrNotFound,
		"mail.ErrMailboxOff":             mail.ErrMailboxOff,
		"consumer.ErrDeadLetterNotFound": consumer.ErrDeadLetterNotFound,
	}
	for an, a := range notFounds {
		for bn, b := range notFounds {
			if an != bn && errors.Is(fmt.Errorf("wrapped: %w", a), b) {
				t.Errorf("errors.Is(%s, %s) is true", an, bn)
			}
		}
		if errs.KindOf(a) != errs.NotFound {
			t.Errorf("%s is not NotFound", an)
		}
	}
	if !errors.Is(ledger.ErrNotYetOpened, ledger.ErrNotFound) {
		t.Error("ledger.ErrNotYetOpened no longer matches ledger.ErrNotFound, as its documentation promises")
	}
}
