package ledger_test

import (
	"testing"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// app is Cairn with the ledger alone, and its facade.
type app struct {
	*testenv.App
	t      *testing.T
	ledger *ledger.Module
}

type response = testenv.Response

func newApp(t *testing.T) *app {
	t.Helper()
	env := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{ledger.Definition}})
	return &app{App: env, t: t, ledger: env.Module("ledger").(*ledger.Module)}
}

func (a *app) open(currency string) string {
	a.t.Helper()
	r := a.API("POST", "/accounts", map[string]any{"owner": "Ada", "currency": currency})
	if r.Status != 201 {
		a.t.Fatalf("open account: %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

// events returns the ledger events of one account as published, in order.
func (a *app) events(accountID string) testenv.Messages {
	return a.Stream(outbox.PublicStream).OfKey(accountID)
}
