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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
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
	for k, v := range benchHandoff(b, a) {
		sum[k] = v
	}
	line, _ := json.Marshal(sum)
	fmt.Println(string(line))
}

// benchHandoff measures live delivery around a rebuild the runtime runs:
// the app is started again with the live consumer replaytest_seen (the
// stream cut to its last 2,000 messages so that it starts small), ~500
// events/s are committed, a rebuild of the last 20,000 events is asked
// over HTTP, and
// the figures are how long it paused the consumer (the rebuild's length,
// by design) and, for events committed after it finished, the longest
// commit-to-handled delay: what the handoff itself adds.
func benchHandoff(b *testing.B, first *testenv.App) map[string]any {
	ctx := context.Background()
	first.Close()
	st, err := first.NATS.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq-2000)); err != nil {
		b.Fatal(err)
	}
	a := testenv.StartApp(b, testenv.AppOptions{DB: first.DB, NATS: first.NATS, RelayDeleteDelay: time.Millisecond,
		Modules: append(app.Modules(), replaytestModule(false, 0)), Config: func(c *config.Config) { c.AdminToken = adminToken }})
	a.Drain()
	w := newWriter(a.DB.Pool, 1000)
	w.next = make([]int, 1000)
	for k := range w.next {
		w.next[k] = 1 << 20 // above every number written before, per key
	}
	w.keepWriting(5, 10*time.Millisecond)
	// The last 20,000 events of the lake: the test module's handler writes
	// row by row, and this phase is about the handoff, not the rate.
	var head int64
	if err := a.DB.Pool.QueryRow(ctx, `SELECT position FROM lake.head`).Scan(&head); err != nil {
		b.Fatal(err)
	}
	from := strconv.FormatInt(max(1, head-20000), 10)
	r := a.API("POST", "/admin/replays", map[string]string{"consumer": consumerSeen, "mode": "rebuild", "from": from}, admin...)
	if r.Status != 202 {
		b.Fatalf("rebuild: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	for {
		var status string
		if err := a.DB.Pool.QueryRow(ctx, `SELECT status FROM replay.runs WHERE id = $1`, id).Scan(&status); err != nil {
			b.Fatal(err)
		}
		if status == "done" {
			break
		}
		if status != "running" {
			b.Fatalf("rebuild %s", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	w.stopQuiet(b)
	a.Drain()
	var rebuildMS, afterMaxMS, afterP99MS float64
	var processed int64
	if err := a.DB.Pool.QueryRow(ctx, `SELECT extract(epoch FROM finished_at - started_at) * 1000, processed FROM replay.runs WHERE id = $1`, id).
		Scan(&rebuildMS, &processed); err != nil {
		b.Fatal(err)
	}
	if err := a.DB.Pool.QueryRow(ctx, `SELECT coalesce(max(d), 0), coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY d), 0) FROM (
		SELECT extract(epoch FROM s.handled_at - s.at) * 1000 AS d FROM replaytest.seen s, replay.runs r
		WHERE r.id = $1 AND s.consumer = $2 AND s.at > r.finished_at) x`, id, consumerSeen).Scan(&afterMaxMS, &afterP99MS); err != nil {
		b.Fatal(err)
	}
	return map[string]any{
		"replay_runtime_rebuild_events": processed,
		"replay_runtime_rebuild_ms":     int(rebuildMS),
		"replay_after_handoff_max_ms":   int(afterMaxMS),
		"replay_after_handoff_p99_ms":   int(afterP99MS),
	}
}

// stopQuiet is Stop for a benchmark.
func (w *writer) stopQuiet(b *testing.B) int {
	w.once.Do(func() { close(w.stop) })
	if err := <-w.done; err != nil {
		b.Fatal(err)
	}
	return int(w.written.Load())
}
