package console_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/testenv"
)

// A toy saga of the console's tests (module consoletest): in state open, a
// nudge completes an instance, or makes it stuck when it asks to; an
// operator's retry completes a stuck one.
var nudged = outbox.Declare[nudge](outbox.EventSpec{Type: "consoletest.nudged.v1", Visibility: outbox.Public,
	Description: "A console test nudges a saga instance."})

type nudge struct {
	ID    string `json:"id"`
	Stall bool   `json:"stall"`
}

type flowData struct {
	Nudges int `json:"nudges"`
}

const flowType = "consoletest_flow"

func newFlow(d modules.Deps) (*saga.Definition[flowData], error) {
	def := saga.Define[flowData](saga.Spec{Type: flowType, Initial: "open", States: []saga.State{{Name: "open"}, {Name: "done", Final: true}}})
	saga.On(def, "nudged", nudged, func(e outbox.Received[nudge]) string { return e.Data.ID },
		map[string]saga.Handler[flowData, nudge]{"open": func(_ context.Context, s *saga.Step[flowData], e outbox.Received[nudge]) error {
			s.Data.Nudges++
			if e.Data.Stall {
				s.Stuck("asked to stall")
				return nil
			}
			s.Goto("done")
			return nil
		}})
	saga.OnRetry(def, func(_ context.Context, s *saga.Step[flowData]) error {
		s.Goto("done")
		return nil
	})
	return def, d.Sagas.Register(def)
}

var flowModule = modules.Define("consoletest", nil, newFlow)

// The Sagas pages list instances by type and status, show one whole (its
// history names what caused each step), and retry and cancel it as the
// admin API does: a stuck instance retried completes; a cancel of a final
// one is refused with 409 and changes nothing; a running one cancelled
// stays cancelled.
func TestConsoleSagas(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{flowModule},
		Config: func(c *config.Config) { c.AdminToken = token }})
	a.Drain()
	def := a.Module("consoletest").(*saga.Definition[flowData])
	ctx := context.Background()
	start := func(id string, nudgeIt, stall bool) {
		t.Helper()
		err := pgx.BeginFunc(ctx, a.DB.Pool, func(tx pgx.Tx) error {
			if err := def.Start(ctx, tx, id, flowData{}, "test", nil); err != nil || !nudgeIt {
				return err
			}
			_, err := outbox.Append(ctx, tx, nudged.New(id, nudge{ID: id, Stall: stall}))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	start("stuck-1", true, true)
	start("done-1", true, false)
	start("open-1", false, false)
	a.Drain()
	waitFor(t, "one stuck instance", func() bool {
		return a.Count(`SELECT count(*) FROM saga.instances WHERE status = 'stuck'`) == 1 &&
			a.Count(`SELECT count(*) FROM saga.instances WHERE status = 'completed'`) == 1
	})

	b := newBrowser(t, a.URL)
	b.login()
	list := b.page("/console/sagas?type=" + flowType + "&status=stuck")
	if !strings.Contains(list, `data-shown="1"`) || !strings.Contains(list, "/console/sagas/"+flowType+"/stuck-1") || strings.Contains(list, "done-1") {
		t.Fatalf("the stuck list:\n%s", list)
	}
	if all := b.page("/console/sagas"); !strings.Contains(all, `data-shown="3"`) {
		t.Fatalf("the whole list:\n%s", all)
	}
	if status, _, _ := b.do("GET", "/console/sagas?status=sleeping", nil); status != 400 {
		t.Fatalf("a bad status: %d", status)
	}

	stuck := b.page("/console/sagas/" + flowType + "/stuck-1")
	if !strings.Contains(stuck, "consoletest.nudged.v1") || !strings.Contains(stuck, "asked to stall") || !strings.Contains(stuck, ">Retry</button>") {
		t.Fatalf("the stuck instance:\n%s", stuck)
	}
	status, retried, _ := b.do("POST", "/console/sagas/"+flowType+"/stuck-1/retry", url.Values{"csrf": {b.csrf(stuck)}})
	if status != 200 || !strings.Contains(retried, `id="saga-status">completed<`) {
		t.Fatalf("retry: %d\n%s", status, retried)
	}
	status, refused, _ := b.do("POST", "/console/sagas/"+flowType+"/done-1/cancel", url.Values{"csrf": {b.csrf(stuck)}})
	if status != 409 || !strings.Contains(refused, "completed already") {
		t.Fatalf("cancel of a completed instance: %d\n%s", status, refused)
	}
	status, cancelled, _ := b.do("POST", "/console/sagas/"+flowType+"/open-1/cancel", url.Values{"csrf": {b.csrf(stuck)}})
	if status != 200 || !strings.Contains(cancelled, `id="saga-status">cancelled<`) {
		t.Fatalf("cancel: %d\n%s", status, cancelled)
	}
	if status, _, _ := b.do("POST", "/console/sagas/"+flowType+"/open-1/cancel", url.Values{}); status != 403 {
		t.Fatalf("a form without the CSRF token: %d", status)
	}
	if n := a.Count(`SELECT count(*) FROM saga.instances WHERE status IN ('completed', 'cancelled')`); n != 3 {
		t.Fatalf("%d instances final, want 3", n)
	}
	if status, _, _ := b.do("GET", "/console/sagas/"+flowType+"/nobody", nil); status != 404 {
		t.Fatalf("an unknown instance: %d", status)
	}
}
