package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/testenv"
)

// BenchmarkLake measures what the lake costs and gives, each figure against
// the same run with the lake off (CAIRN_LAKE=off, where the relay deletes
// published rows as before):
//
//	go test ./integration_test -run '^$' -bench '^BenchmarkLake$' -benchtime 1x -timeout 60m
//
// Phases: the relay's drain of 100,000 events committed while no relay ran,
// off then on (and, on, how long the lake takes to hold them all); HTTP
// deposits over 16 connections for CAIRN_BENCH_SECONDS (default 15 s), off
// then on, sampling meanwhile the published rows not yet moved; the state
// of an account with 1,000 events as of random instants; the lake's size
// per million events; the Parquet export of the whole lake. One JSON line.
func BenchmarkLake(b *testing.B) {
	ctx := context.Background()
	db := testenv.MustDB(b)
	nt := benchMustNATS(b)
	pool := benchPool(b, db.URL, 8)
	benchRequireDurable(b, pool)
	sc, err := nats.Connect(nt.URL, nats.Name("cairn-bench-lake-subscriber"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sc.Close)
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	env := func(lake string) map[string]string {
		return map[string]string{
			"CAIRN_DATABASE_URL": db.URL, "CAIRN_NATS_URL": nt.URL, "CAIRN_NATS_REPLICAS": strconv.Itoa(nt.Replicas),
			"CAIRN_NATS_SYNC_INTERVAL": "1s", "CAIRN_LAKE": lake, "CAIRN_ADMIN_TOKEN": "bench",
			"CAIRN_LAKE_EXPORT_INTERVAL": "0",
		}
	}
	sum := map[string]any{"bench": "lake", "nats_embedded": nt.Embedded}

	// ---- 1. drain: off, on, on, off ------------------------------------
	// Alternating, each after a VACUUM and a CHECKPOINT: the run after
	// another one otherwise pays for vacuuming the rows it removed.
	drains := map[string][]float64{}
	for i, mode := range []string{"off", "on", "on", "off"} {
		benchSettleOutbox(b, pool)
		typ := fmt.Sprintf("bench.lake_drain_%s%d%s.v1", mode, i, tag)
		outbox.Declare[benchData](outbox.EventSpec{Type: typ, Visibility: outbox.Public, Description: "A lake benchmark event."})
		inLake0 := lakeCount(b, pool)
		ids := benchLoadBacklog(b, pool, typ)
		arr := benchSubscribe(b, sc, outbox.Subject(typ, outbox.Public), benchDrainEvents)
		p := startCairn(b, env(mode))
		leaderAt := benchLogTime(b, p.WaitLog("relay is leader", 30*time.Second))
		select {
		case <-arr.done:
		case <-time.After(benchArrivalTimeout):
			b.Fatalf("drain (lake %s): %d of %d arrived", mode, arr.n.Load(), benchDrainEvents)
		}
		dur := arr.lastArrival().Sub(leaderAt)
		arr.verify(b, "drain "+mode, ids)
		_ = arr.sub.Unsubscribe()
		rate := float64(benchDrainEvents) / dur.Seconds()
		drains[mode] = append(drains[mode], benchRound(rate, 0))
		if mode == "on" {
			for lakeCount(b, pool)-inLake0 < benchDrainEvents {
				if time.Since(leaderAt) > 5*time.Minute {
					b.Fatalf("the lake holds %d of the %d drained events after 5 min", lakeCount(b, pool)-inLake0, benchDrainEvents)
				}
				time.Sleep(20 * time.Millisecond)
			}
			inLake := time.Since(leaderAt)
			sum["drain_lake_complete_seconds"] = benchRound(inLake.Seconds(), 2)
			b.Logf("drain, lake on: %.0f events/s; the lake held all %d %s after the relay led (of which the delete delay, 3 s)", rate, benchDrainEvents, inLake.Round(time.Millisecond))
		} else {
			b.Logf("drain, lake off: %.0f events/s", rate)
		}
		benchWaitOutboxEmpty(b, pool, 2*time.Minute)
		if err := p.Stop(30 * time.Second); err != nil {
			b.Logf("cairn did not stop cleanly: %v", err)
		}
	}
	sum["drain_events_per_s_lake_off"], sum["drain_events_per_s_lake_on"] = drains["off"], drains["on"]
	sum["drain_ratio"] = benchRound(maxOf(drains["on"])/maxOf(drains["off"]), 3)

	// ---- 2. HTTP deposits, off then on ---------------------------------
	dur := benchEnvSeconds(b, "CAIRN_BENCH_SECONDS", 15*time.Second)
	var accounts []string
	deposits := map[string][]float64{}
	for i, mode := range []string{"off", "on", "on", "off"} {
		benchSettleOutbox(b, pool)
		p := startCairn(b, env(mode))
		le := &ledgerEnv{base: p.HTTP + "/api/v1", pool: pool, sc: sc, cairnPid: p.Pid()}
		if accounts == nil {
			accounts = ledgerOpenAccounts(b, le.base, ledgerBenchAccounts, 16)
		}
		le.accounts = accounts
		ledgerRunDeposits(b, le, "warm-up "+mode, 16, false, 2*time.Second)
		// Sampled with the lake off too, so both runs carry its queries.
		unmoved := sampleUnmoved(b, pool)
		r := ledgerRunDeposits(b, le, "deposits lake "+mode, 16, false, dur)
		deposits[mode] = append(deposits[mode], benchRound(r.rps, 0))
		sum[fmt.Sprintf("deposit_p99_ms_c16_lake_%s_%d", mode, i)] = benchRound(benchMS(r.p99), 2)
		sum[fmt.Sprintf("deposit_wal_bytes_per_tx_lake_%s_%d", mode, i)] = benchRound(r.walPerTx, 0)
		rows, age := unmoved.stop()
		if mode == "on" {
			sum[fmt.Sprintf("unmoved_max_rows_%d", i)] = rows
			sum[fmt.Sprintf("unmoved_max_seconds_of_events_%d", i)] = benchRound(float64(rows)/r.rps, 2)
			sum[fmt.Sprintf("unmoved_oldest_max_s_%d", i)] = benchRound(age, 2)
			b.Logf("deposits, lake on: %.0f/s, WAL %.0f bytes per deposit; published rows not yet moved: at most %d (%.2f s of deposits), the oldest at most %.2f s after its commit",
				r.rps, r.walPerTx, rows, float64(rows)/r.rps, age)
		} else {
			b.Logf("deposits, lake off: %.0f/s, WAL %.0f bytes per deposit; published rows not yet deleted: at most %d", r.rps, r.walPerTx, rows)
		}
		ledgerQuiesce(b, le)
		if mode == "off" || i != 2 {
			if err := p.Stop(30 * time.Second); err != nil {
				b.Logf("cairn did not stop cleanly: %v", err)
			}
			continue
		}

		// ---- 3. state as of a time, for an account with 1,000 events --
		id := accounts[0]
		for range 1000 - ledgerEventsOf(b, pool, id) {
			resp, err := http.Post(le.base+"/accounts/"+id+"/deposits", "application/json", strings.NewReader(`{"amount":1}`))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		ledgerQuiesce(b, le)
		var first, last time.Time
		if err := pool.QueryRow(ctx, `SELECT min(time), max(time), count(*) FROM lake.events WHERE subject = $1`, id).Scan(&first, &last, new(int)); err != nil {
			b.Fatal(err)
		}
		lats := make([]time.Duration, 0, 1000)
		client := &http.Client{}
		for range 1000 {
			at := first.Add(time.Duration(rand.Int64N(int64(last.Sub(first)) + 1)))
			req, _ := http.NewRequest("GET", le.base+"/lake/subjects/"+id+"/state?as_of="+at.UTC().Format(time.RFC3339Nano), nil)
			req.Header.Set("Authorization", "Bearer bench")
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lats = append(lats, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Fatalf("state as of %s: %d", at, resp.StatusCode)
			}
		}
		// The fold read every event: as of the last one, the version is
		// the account's last.
		req, _ := http.NewRequest("GET", le.base+"/lake/subjects/"+id+"/state?as_of="+last.UTC().Format(time.RFC3339Nano), nil)
		req.Header.Set("Authorization", "Bearer bench")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var st struct {
			State struct{ Version int64 } `json:"state"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || st.State.Version != int64(ledgerEventsOf(b, pool, id)-1) {
			b.Fatalf("state as of the last event: version %d (%v), the ledger has %d entries", st.State.Version, err, ledgerEventsOf(b, pool, id))
		}
		benchSortDurations(lats)
		sum["state_as_of_p50_ms"] = benchRound(benchMS(benchPercentile(lats, 0.50)), 2)
		sum["state_as_of_p99_ms"] = benchRound(benchMS(benchPercentile(lats, 0.99)), 2)
		b.Logf("state as of a random instant of an account with 1,000 events, over HTTP: p50 %s, p99 %s",
			benchPercentile(lats, 0.50).Round(10*time.Microsecond), benchPercentile(lats, 0.99).Round(10*time.Microsecond))
		if err := p.Stop(30 * time.Second); err != nil {
			b.Logf("cairn did not stop cleanly: %v", err)
		}
	}
	sum["deposit_rps_c16_lake_off"], sum["deposit_rps_c16_lake_on"] = deposits["off"], deposits["on"]
	sum["deposit_ratio"] = benchRound(maxOf(deposits["on"])/maxOf(deposits["off"]), 3)

	// ---- 4. size, 5. export ---------------------------------------------
	var events, bytes int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM lake.events),
		(SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'lake.events'::regclass) + pg_total_relation_size('lake.ids')`).Scan(&events, &bytes); err != nil {
		b.Fatal(err)
	}
	sum["lake_events"] = events
	sum["lake_mb_per_million_events"] = benchRound(float64(bytes)/float64(events)*1e6/(1<<20), 0)
	b.Logf("the lake: %d events in %.0f MB with indexes and lake.ids: %.0f MB per million", events, float64(bytes)/(1<<20), float64(bytes)/float64(events)*1e6/(1<<20))
	e, err := export.Open(ctx, pool, export.Options{URL: "file://" + b.TempDir(), Period: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	r, err := e.ExportOnce(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	sum["export_events_per_s"] = benchRound(float64(r.Rows)/r.Duration.Seconds(), 0)
	sum["export_bytes_per_event"] = benchRound(float64(r.Bytes)/float64(r.Rows), 1)
	b.Logf("export: %d events in %d files, %.1f MB, in %s: %.0f events/s, %.1f bytes per event",
		r.Rows, r.Files, float64(r.Bytes)/(1<<20), r.Duration.Round(time.Millisecond), float64(r.Rows)/r.Duration.Seconds(), float64(r.Bytes)/float64(r.Rows))

	for _, k := range []string{"drain_ratio", "deposit_ratio", "state_as_of_p99_ms", "export_events_per_s"} {
		b.ReportMetric(benchFloat(sum[k]), k)
	}
	b.ReportMetric(0, "ns/op")
	line, err := json.Marshal(sum)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Print("\n" + string(line) + "\n")
}

// benchSettleOutbox vacuums the outbox and checkpoints, so that a phase
// does not pay for the rows the one before it removed.
func benchSettleOutbox(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	for _, sql := range []string{`VACUUM ANALYZE outbox.events`, `CHECKPOINT`} {
		if _, err := pool.Exec(context.Background(), sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func lakeCount(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT position FROM lake.head`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func ledgerEventsOf(tb testing.TB, pool *pgxpool.Pool, account string) int {
	tb.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.entries WHERE account_id = $1`, account).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// unmovedSampler watches the rows the relay has published (at or below its
// cursor) that the lake has not taken yet.
type unmovedSampler struct {
	stopc   chan struct{}
	done    sync.WaitGroup
	maxRows atomic.Int64
	maxAge  atomic.Int64 // microseconds
}

func sampleUnmoved(tb testing.TB, pool *pgxpool.Pool) *unmovedSampler {
	s := &unmovedSampler{stopc: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
			var rows int64
			var age float64
			err := pool.QueryRow(context.Background(), `SELECT count(*), coalesce(extract(epoch FROM now() - min(e.created_at)), 0)::float8
				FROM outbox.events e, outbox.relay_cursor c WHERE (e.txid, e.seq) <= (c.txid, c.seq)`).Scan(&rows, &age)
			if err != nil {
				tb.Logf("sample unmoved rows: %v", err)
				continue
			}
			if rows > s.maxRows.Load() {
				s.maxRows.Store(rows)
			}
			if us := int64(age * 1e6); us > s.maxAge.Load() {
				s.maxAge.Store(us)
			}
		}
	}()
	return s
}

func (s *unmovedSampler) stop() (int64, float64) {
	close(s.stopc)
	s.done.Wait()
	return s.maxRows.Load(), float64(s.maxAge.Load()) / 1e6
}
