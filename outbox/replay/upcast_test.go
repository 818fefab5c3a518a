package replay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// replaytest.ticked.v2 renames n to count; its upcaster from v1 is the
// pure function on the JSON that the issue asks for.
var eventTickedV2 = outbox.Declare[tickedV2](outbox.EventSpec{
	Type: "replaytest.ticked.v2", Visibility: outbox.Public,
	Description: "A test tick, v2: n is now count.",
})

type tickedV2 struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

var _ = outbox.Upcast(eventTicked, eventTickedV2, func(data json.RawMessage) (json.RawMessage, error) {
	var v1 ticked
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(tickedV2{Key: v1.Key, Count: v1.N})
})

const consumerV2 = "replaytest_v2"

// replaytestV2Module is the module with one rebuildable consumer of v2.
func replaytestV2Module() modules.Definition {
	return modules.Define("replaytest", replaytestFiles, func(d modules.Deps) (*struct{}, error) {
		reset := func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM replaytest.seen WHERE consumer = $1`, consumerV2); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DELETE FROM replaytest.keys WHERE consumer = $1`, consumerV2)
			return err
		}
		handle := func(ctx context.Context, tx pgx.Tx, e outbox.Received[tickedV2]) error {
			return see(ctx, tx, consumerV2, outbox.Received[ticked]{ID: e.ID, Time: e.Time, Data: ticked{Key: e.Data.Key, N: e.Data.Count}})
		}
		return &struct{}{}, outbox.Handle(d.Consumers, consumerV2, eventTickedV2, handle, outbox.RebuildableWith(reset))
	})
}

// A handler of v2 rebuilt over history that holds v1 events (upcast) and
// v2 events ends with the same state for both: the v1 batch (keys a-*)
// and the v2 batch (keys b-*) carry the same numbers.
func TestRebuildUpcastsOlderVersions(t *testing.T) {
	a := startReplayApp(t, testenv.AppOptions{Modules: append(app.Modules(), replaytestV2Module())})
	ctx := context.Background()
	var evs []outbox.Event
	for i := range 200 {
		k := fmt.Sprintf("k%d", i%7)
		evs = append(evs, eventTicked.New("a-"+k, ticked{Key: "a-" + k, N: i + 1}),
			eventTickedV2.New("b-"+k, tickedV2{Key: "b-" + k, Count: i + 1}))
	}
	if err := pgx.BeginFunc(ctx, a.DB.Pool, func(tx pgx.Tx) error { _, err := outbox.Append(ctx, tx, evs...); return err }); err != nil {
		t.Fatal(err)
	}
	a.Drain()
	const same = `SELECT count(*) FROM replaytest.seen x JOIN replaytest.seen y
		ON x.consumer = y.consumer AND x.key = 'a-' || substr(y.key, 3) AND x.n = y.n
		WHERE x.consumer = $1 AND y.key LIKE 'b-%' AND x.n > 0`
	if n := a.Count(same, consumerV2); n != 200 {
		t.Fatalf("live: %d of 200 v1 events read as their v2 twins", n)
	}
	r := a.API("POST", "/admin/replays", map[string]string{"consumer": consumerV2, "mode": "rebuild"}, admin...)
	if r.Status != 202 {
		t.Fatalf("rebuild: %d %s", r.Status, r.Raw)
	}
	if done := waitRun(t, a, r.Body["id"].(string)); done.Body["status"] != "done" || done.Body["processed"].(float64) != 400 {
		t.Fatalf("rebuild: %s", done.Raw)
	}
	a.Drain()
	if n := a.Count(same, consumerV2); n != 200 {
		t.Fatalf("rebuilt: %d of 200 v1 events read as their v2 twins", n)
	}
	seenReport(t, a.Count, consumerV2, 400)
}
