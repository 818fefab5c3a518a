package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/testenv"
)

const adminToken = "replay-test-token"

var admin = []string{"Authorization", "Bearer " + adminToken}

func startReplayApp(t *testing.T, o testenv.AppOptions, mods ...any) *testenv.App {
	t.Helper()
	o.Config = func(c *config.Config) { c.AdminToken = adminToken }
	if o.RelayDeleteDelay == 0 {
		o.RelayDeleteDelay = time.Millisecond // published rows move into the lake at once
	}
	return testenv.StartApp(t, o)
}

// waitRun polls GET /api/v1/admin/replays/:id until the run is no longer
// running, and returns its last answer.
func waitRun(t *testing.T, a *testenv.App, id string) testenv.Response {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := a.API("GET", "/admin/replays/"+id, nil, admin...)
		if r.Status != 200 {
			t.Fatalf("GET replay %s: %d %s", id, r.Status, r.Raw)
		}
		if r.Body["status"] != "running" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay %s still running after 2 minutes: %s", id, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A rebuild started through the admin API while writers keep committing
// resets the consumer, replays the lake and hands over to live: at the end
// every event was handled exactly once since the reset, in per-key order.
func TestRebuildWhileWritersCommitLosesAndRepeatsNothing(t *testing.T) {
	a := startReplayApp(t, testenv.AppOptions{Modules: append(app.Modules(), replaytestModule(false, 0))})
	w := newWriter(a.DB.Pool, 50)
	if err := w.write(context.Background(), 5000, 250); err != nil {
		t.Fatal(err)
	}
	a.Drain()
	w.keepWriting(10, 10*time.Millisecond) // about 1,000 events/s
	time.Sleep(300 * time.Millisecond)

	r := a.API("POST", "/admin/replays", map[string]string{"consumer": consumerSeen, "mode": "rebuild"}, admin...)
	if r.Status != 202 || r.Body["status"] != "running" || r.Body["mode"] != "rebuild" || r.Body["consumer"] != consumerSeen {
		t.Fatalf("start a rebuild: %d %s", r.Status, r.Raw)
	}
	done := waitRun(t, a, r.Body["id"].(string))
	if done.Body["status"] != "done" || done.Body["processed"].(float64) < 5000 {
		t.Fatalf("rebuild: %s", done.Raw)
	}
	time.Sleep(300 * time.Millisecond) // writers go on after the handoff
	total := w.Stop(t)
	a.Drain()
	seenReport(t, a.Count, consumerSeen, total)
	t.Logf("rebuild replayed %v events while %d were written in all; handoff %v", done.Body["processed"], total, done.Body["handoff"])
}
