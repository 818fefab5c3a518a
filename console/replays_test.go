package console_test

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox/replay"
	"github.com/cairn-dev/cairn/testenv"
)

var (
	runRow    = regexp.MustCompile(`<tr data-run="([^"]+)" data-consumer="([^"]+)" data-mode="([^"]+)" data-status="([^"]+)" data-processed="(\d+)" data-effects="(\d+)" data-failed="(\d+)">`)
	effectRow = regexp.MustCompile(`<tr data-effect="([^"]+)" data-position="(\d+)">`)
)

var adminAuth = []string{"Authorization", "Bearer " + token}

// startReplay asks the admin API for a replay and waits until it is no
// longer running; it returns the run as GET /admin/replays/:id last
// answered.
func startReplay(t *testing.T, a *testenv.App, consumer, mode string) replay.Run {
	t.Helper()
	r := a.API("POST", "/admin/replays", map[string]string{"consumer": consumer, "mode": mode}, adminAuth...)
	if r.Status != 202 {
		t.Fatalf("start a %s of %s: %d %s", mode, consumer, r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	var run replay.Run
	waitFor(t, "the "+mode+" of "+consumer+" to end", func() bool {
		g := a.API("GET", "/admin/replays/"+id, nil, adminAuth...)
		if g.Status != 200 || json.Unmarshal([]byte(g.Raw), &run) != nil {
			t.Fatalf("GET replay %s: %d %s", id, g.Status, g.Raw)
		}
		return run.Status != replay.StatusRunning
	})
	return run
}

func rowOf(r replay.Run) string {
	return fmt.Sprintf("%s %s %s %s %d %d %d", r.ID, r.Consumer, r.Mode, r.Status, r.Processed, r.Effects, r.Failed)
}

// The Replays page lists the runs the admin API started, the most
// recently requested first, each with its consumer, mode, final status
// and counts as GET /api/v1/admin/replays/:id answers them; a dry run's
// page shows the effects it recorded (the would-be emails, with their
// recipients), as /effects answers them.
func TestConsoleReplays(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond, // published rows move into the lake at once
		Config: func(c *config.Config) { c.AdminToken = token }})
	const users = 3
	for i := range users {
		signUp(t, a, fmt.Sprintf("replayed%d", i))
	}
	a.Drain()
	waitFor(t, "the activations in the lake", func() bool {
		return a.Count(`SELECT count(*) FROM lake.events WHERE type = 'users.activation_requested.v1'`) == users
	})
	b := newBrowser(t, a.URL)
	b.login()
	before := runRow.FindAllStringSubmatch(b.page("/console/replays"), -1)

	dry := startReplay(t, a, mail.Consumer, "dry_run")
	rebuild := startReplay(t, a, "orders_customer_created", "rebuild")
	if dry.Status != replay.StatusDone || dry.Effects != users || rebuild.Status != replay.StatusDone {
		t.Fatalf("the runs: %+v\n%+v", dry, rebuild)
	}

	page := b.page("/console/replays")
	var rows []string
	for _, m := range runRow.FindAllStringSubmatch(page, -1) {
		rows = append(rows, strings.Join(m[1:], " "))
	}
	if len(rows) != len(before)+2 || len(rows) < 2 || rows[0] != rowOf(rebuild) || rows[1] != rowOf(dry) {
		t.Fatalf("the page lists\n%s\nwant first\n%s\n%s\n%s", strings.Join(rows, "\n"), rowOf(rebuild), rowOf(dry), page)
	}
	for _, want := range []string{`href="/console/replays/` + dry.ID + `"`, `href="/console/replays" aria-current="page"`, "cairn replay --dry-run", "curl -X POST localhost:8080/api/v1/admin/replays"} {
		if !strings.Contains(page, want) {
			t.Errorf("the list lacks %s", want)
		}
	}

	detail := b.page("/console/replays/" + dry.ID)
	eff := a.API("GET", "/admin/replays/"+dry.ID+"/effects?limit=100", nil, adminAuth...)
	var answer struct{ Effects []replay.Effect }
	if eff.Status != 200 || json.Unmarshal([]byte(eff.Raw), &answer) != nil {
		t.Fatalf("effects: %d %s", eff.Status, eff.Raw)
	}
	var shown, want []string
	for _, m := range effectRow.FindAllStringSubmatch(detail, -1) {
		shown = append(shown, m[1]+"@"+m[2])
	}
	for _, e := range answer.Effects {
		want = append(want, fmt.Sprintf("%s@%d", e.Effect, e.Position))
	}
	if len(shown) != users || !slices.Equal(shown, want) {
		t.Fatalf("the dry run's page shows effects %q, the admin API %q:\n%s", shown, want, detail)
	}
	text := html.UnescapeString(detail)
	for i := range users {
		if !strings.Contains(text, fmt.Sprintf("replayed%d@example.com", i)) {
			t.Errorf("no would-be email to replayed%d@example.com on the dry run's page", i)
		}
	}
	for _, want := range []string{`id="run-status">done<`, `id="run-consumer">` + mail.Consumer + `<`, `data-mode="dry_run"`,
		fmt.Sprintf(`data-effects="%d"`, dry.Effects), fmt.Sprintf(`data-processed="%d"`, dry.Processed)} {
		if !strings.Contains(detail, want) {
			t.Errorf("the dry run's page lacks %s", want)
		}
	}
	if r := b.page("/console/replays/" + rebuild.ID); !strings.Contains(r, `data-mode="rebuild"`) || strings.Contains(r, `id="effects-h"`) ||
		!strings.Contains(r, "Handed over to live") {
		t.Errorf("the rebuild's page:\n%s", r)
	}
	for _, id := range []string{"0193a3b0-0000-7000-8000-000000000000", "not-a-uuid"} {
		if status, _, _ := b.do("GET", "/console/replays/"+id, nil); status != 404 {
			t.Errorf("replay %s: %d", id, status)
		}
	}
}
