package replay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/replay"
	"github.com/cairn-dev/cairn/testenv"
)

// BenchmarkReplay measures replays over the lake (`make bench
// BENCH=replay`): CAIRN_BENCH_REPLAY_EVENTS events (default 200,000) are
// committed, published and moved into the lake, then replayed by
// replay.Rebuild, as the consumer runtime runs a rebuild (minus its lease
// fence), into (1) a handler that does nothing and (2) a PostgreSQL
// projection written in batches (one upsert statement per page of the
// lake). Each figure is the best of three runs. One JSON line.
func BenchmarkReplay(b *testing.B) {
	n := 200000
	if v, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_REPLAY_EVENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	a := testenv.StartApp(b, testenv.AppOptions{Modules: append(app.Modules(), replaytestTables()), RelayDeleteDelay: time.Millisecond})
	w := newWriter(a.DB.Pool, 1000)
	began := time.Now()
	if err := w.write(ctx, n, 1000); err != nil {
		b.Fatal(err)
	}
	for a.Count(`SELECT count(*) FROM lake.events WHERE type = 'replaytest.ticked.v1'`) < n {
		if time.Since(began) > 10*time.Minute {
			b.Fatal("the events did not reach the lake within 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	intoLake := time.Since(began)

	subs := &outbox.Subscriptions{}
	noop := func(context.Context, pgx.Tx, outbox.Received[ticked]) error { return nil }
	if err := outbox.Handle(subs, "bench_noop", eventTicked, noop, outbox.RebuildableWith(nil)); err != nil {
		b.Fatal(err)
	}
	reset := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM replaytest.keys WHERE consumer = 'bench_projection'`)
		return err
	}
	// The projection: per key, the last number and how many events.
	batch := func(ctx context.Context, tx pgx.Tx, es []outbox.Received[ticked]) error {
		last := map[string]int{}
		for _, e := range es {
			last[e.Data.Key] = max(last[e.Data.Key], e.Data.N)
		}
		keys, ns := make([]string, 0, len(last)), make([]int32, 0, len(last))
		for k, v := range last {
			keys, ns = append(keys, k), append(ns, int32(v))
		}
		_, err := tx.Exec(ctx, `INSERT INTO replaytest.keys (consumer, key, last_n)
			SELECT 'bench_projection', k, v FROM unnest($1::text[], $2::int[]) AS t(k, v)
			ON CONFLICT (consumer, key) DO UPDATE SET last_n = EXCLUDED.last_n`, keys, ns)
		return err
	}
	if err := outbox.Handle(subs, "bench_projection", eventTicked, noop, outbox.RebuildableWith(reset), outbox.ReplayBatch(batch)); err != nil {
		b.Fatal(err)
	}
	rate := func(sub outbox.Subscription) float64 {
		best := 0.0
		for range 3 {
			t0 := time.Now()
			ho, err := replay.Rebuild(ctx, replay.Env{DB: a.DB.Pool}, sub, replay.Range{})
			if err != nil {
				b.Fatal(err)
			}
			if ho.Processed != int64(n) {
				b.Fatalf("%s replayed %d of %d events", sub.Consumer, ho.Processed, n)
			}
			best = max(best, float64(n)/time.Since(t0).Seconds())
		}
		return best
	}
	all := subs.All()
	sum := map[string]any{
		"bench":                          "replay",
		"replay_events":                  n,
		"replay_noop_events_per_s":       int(rate(all[0])),
		"replay_projection_events_per_s": int(rate(all[1])),
		"replay_into_lake_s":             fmt.Sprintf("%.1f", intoLake.Seconds()),
	}
	if got := a.Count(`SELECT count(*) FROM replaytest.keys WHERE consumer = 'bench_projection'`); got != 1000 {
		b.Fatalf("the projection holds %d keys, want 1000", got)
	}
	line, _ := json.Marshal(sum)
	fmt.Println(string(line))
}
