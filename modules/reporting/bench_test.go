package reporting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/testenv"
)

// BenchmarkReporting measures the reporting module (issue 13), in one run:
//
//	go test ./modules/reporting -run '^$' -bench '^BenchmarkReporting$' -benchtime 1x -timeout 60m
//
// The app runs in the benchmark's process (only the reporting module: the
// events are appended to the outbox as the modules would, so no module
// reacts to them), on a real PostgreSQL and NATS; the relay publishes, the
// lake takes the events in. Phases:
//   - freshness: 1,000 events/s for CAIRN_BENCH_SECONDS (default 15 s);
//     from each order_placed's commit to its lines being in the live
//     order-lines table (polled every 5 ms);
//   - rebuild: CAIRN_BENCH_REPORTING_EVENTS more events (default
//     1,000,000) into the lake, then a newer build (every projection at
//     version 2) started beside the app: how long until all four versions
//     are live, while a query load on the four reports counts failed and
//     empty answers;
//   - queries: the live order-lines table filled to 1,000,000 lines
//     (synthetic rows added to what the rebuild made), then 200 requests
//     of each report in turn: p50 and p99.
func BenchmarkReporting(b *testing.B) {
	ctx := context.Background()
	seconds := 15 * time.Second
	if v, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_SECONDS")); err == nil && v > 0 {
		seconds = time.Duration(v) * time.Second
	}
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CAIRN_BENCH_REPORTING_EVENTS")); err == nil && v > 0 {
		total = v
	}
	a := testenv.StartApp(b, testenv.AppOptions{Modules: []modules.Definition{reporting.Definition}, RelayDeleteDelay: 3 * time.Second})
	sum := map[string]any{"bench": "reporting"}
	waitLive(b, a, 1, 2*time.Minute)

	// ---- 1. freshness at 1,000 events/s -------------------------------
	fresh := benchFreshness(b, a, seconds)
	sum["freshness_events_per_s"] = fresh.rate
	sum["freshness_orders"] = len(fresh.lat)
	sum["freshness_p50_ms"], sum["freshness_p99_ms"], sum["freshness_max_ms"] = ms(pct(fresh.lat, 50)), ms(pct(fresh.lat, 99)), ms(pct(fresh.lat, 100))
	b.Logf("freshness: %d orders at %.0f events/s; commit → visible p50 %.1f ms p99 %.1f ms max %.1f ms", len(fresh.lat), fresh.rate,
		ms(pct(fresh.lat, 50)), ms(pct(fresh.lat, 99)), ms(pct(fresh.lat, 100)))

	// ---- 2. rebuild over the lake --------------------------------------
	began := time.Now()
	n := benchLoad(b, a, total)
	var inLake int64
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		// Every event of the stream is in the lake.
		var held int64
		if err := a.DB.Pool.QueryRow(ctx, `SELECT position, coalesce((streams->>'EVENTS')::bigint, 0) FROM lake.head`).Scan(&inLake, &held); err != nil {
			b.Fatal(err)
		}
		st, err := a.NATS.JS.Stream(ctx, "EVENTS")
		if err != nil {
			b.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if m, err := a.Relay().Metrics(ctx); err == nil && m.Backlog == 0 && uint64(held) >= info.State.LastSeq {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the lake never took every event in")
		}
	}
	waitLive(b, a, 1, 15*time.Minute)
	sum["lake_events"] = inLake
	b.Logf("loaded %d events; the lake holds %d (%.0f s)", n, inLake, time.Since(began).Seconds())
	ld := startLoader(a.URL)
	began = time.Now()
	startNewBinary(b, a, allAt(2, nil), "bench-new", projection.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	waitLive(b, a, 2, 10*time.Minute)
	took := time.Since(began)
	ld.stop()
	sum["rebuild_events"] = inLake
	sum["rebuild_live_s"] = round(took.Seconds(), 1)
	sum["rebuild_queries"], sum["rebuild_queries_failed"], sum["rebuild_queries_empty"] = ld.ok.Load()+ld.failed.Load()+ld.empty.Load(), ld.failed.Load(), ld.empty.Load()
	for _, s := range reporting.Specs(reporting.Options{}) {
		var secs float64
		_ = a.DB.Pool.QueryRow(ctx, `SELECT extract(epoch FROM (SELECT state_at FROM projection.versions WHERE name = $1 AND version = 2) - $2::timestamptz)`,
			s.Name, began).Scan(&secs)
		sum["rebuild_"+s.Name[len("reporting_"):]+"_s"] = round(secs, 1)
	}
	b.Logf("rebuild over %d lake events: all four live in %.1f s; the load: %d answers, %d failed, %d empty (first bad: %v)",
		inLake, took.Seconds(), ld.ok.Load(), ld.failed.Load(), ld.empty.Load(), ld.firstBad.Load())

	// ---- 3. queries over 1,000,000 order lines --------------------------
	lines := benchFillLines(b, a.DB.Pool, 1_000_000)
	sum["query_order_lines"] = lines
	var cust string
	_ = a.DB.Pool.QueryRow(ctx, `SELECT customer_id FROM reporting.order_lines_v2 LIMIT 1`).Scan(&cust)
	for name, path := range map[string]string{
		"orders":          "/reports/orders",
		"orders_customer": "/reports/orders?customer_id=" + cust,
		"orders_sku":      "/reports/orders?sku=sku-03&status=approved&limit=1000",
		"orders_range":    "/reports/orders?from=" + time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339) + "&to=" + time.Now().UTC().Format(time.RFC3339),
		"sales":           "/reports/sales/daily",
		"stock":           "/reports/stock",
		"accounts":        "/reports/accounts/daily",
	} {
		var lat []time.Duration
		for range 200 {
			t0 := time.Now()
			resp, err := http.Get(a.URL + "/api/v1" + path)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("GET %s: %v %v", path, err, resp)
			}
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
		}
		sum["query_"+name+"_p50_ms"], sum["query_"+name+"_p99_ms"] = ms(pct(lat, 50)), ms(pct(lat, 99))
		b.Logf("GET %s over %d lines: p50 %.1f ms p99 %.1f ms", path, lines, ms(pct(lat, 50)), ms(pct(lat, 99)))
	}
	out, _ := json.Marshal(sum)
	fmt.Println(string(out))
}

type freshness struct {
	lat  []time.Duration
	rate float64
}

// benchFreshness appends 10 events every 10 ms for d, and times each
// order_placed from its commit to its lines in the live order-lines table.
func benchFreshness(b *testing.B, a *testenv.App, d time.Duration) freshness {
	ctx := context.Background()
	events := history(101, int(d.Seconds()*1000/6)+200)
	var mu sync.Mutex
	committed := map[string]time.Time{}
	var lat []time.Duration
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the watcher
		defer close(watched)
		for {
			select {
			case <-stop:
				mu.Lock()
				left := len(committed)
				mu.Unlock()
				if left == 0 {
					return
				}
			case <-time.After(5 * time.Millisecond):
			}
			mu.Lock()
			ids := make([]string, 0, len(committed))
			for id := range committed {
				ids = append(ids, id)
			}
			mu.Unlock()
			if len(ids) == 0 {
				continue
			}
			rows, err := a.DB.Pool.Query(ctx, `SELECT DISTINCT order_id FROM reporting.order_lines_v1 WHERE order_id = ANY($1)`, ids)
			if err != nil {
				b.Error(err)
				return
			}
			now := time.Now()
			for rows.Next() {
				var id string
				_ = rows.Scan(&id)
				mu.Lock()
				lat = append(lat, now.Sub(committed[id]))
				delete(committed, id)
				mu.Unlock()
			}
			rows.Close()
		}
	}()
	began := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	sent := 0
	for i := 0; i+10 <= len(events) && time.Since(began) < d; i += 10 {
		<-tick.C
		batch := events[i : i+10]
		if err := publish(ctx, a.DB.Pool, batch, 10, 0); err != nil {
			b.Fatal(err)
		}
		at := time.Now()
		mu.Lock()
		for _, e := range batch {
			if e.Type == "orders.order_placed.v1" {
				var d struct {
					OrderID string `json:"order_id"`
				}
				_ = json.Unmarshal(e.Data, &d)
				committed[d.OrderID] = at
			}
		}
		mu.Unlock()
		sent += 10
	}
	tick.Stop()
	rate := float64(sent) / time.Since(began).Seconds()
	close(stop)
	select {
	case <-watched:
	case <-time.After(time.Minute):
		b.Fatal("some orders never became visible")
	}
	return freshness{lat: lat, rate: round(rate, 0)}
}

// benchLoad appends about n events (histories of 1,000 orders) on 4
// connections, 500 to a transaction.
func benchLoad(b *testing.B, a *testenv.App, n int) int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		count int
	)
	work := make(chan uint64)
	for range 4 {
		wg.Go(func() {
			for seed := range work {
				evs := history(seed, 1000)
				if err := publish(context.Background(), a.DB.Pool, evs, 500, 0); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				count += len(evs)
				mu.Unlock()
			}
		})
	}
	for seed := uint64(1000); ; seed++ {
		mu.Lock()
		done := count >= n
		mu.Unlock()
		if done || b.Failed() {
			break
		}
		work <- seed
	}
	close(work)
	wg.Wait()
	return count
}

// benchFillLines adds synthetic lines to the live order-lines table until
// it holds n, and returns how many it holds.
func benchFillLines(b *testing.B, pool *pgxpool.Pool, n int64) int64 {
	ctx := context.Background()
	var have int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM reporting.order_lines_v2`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have < n {
		_, err := pool.Exec(ctx, `
INSERT INTO reporting.order_lines_v2 (order_id, line, placed_at, customer_id, sku, quantity, unit_price, currency, total,
                                      status, reason, credit, stock, payment, stock_reserved, payment_authorized)
SELECT 'synthetic-' || g, 1, now() - (g % 200000) * interval '1 second', md5((g % 2000)::text)::uuid::text,
       'sku-' || lpad((g % 12)::text, 2, '0'), 1 + g % 5, 100 + g % 900, 'EUR', (1 + g % 5) * (100 + g % 900),
       (ARRAY['approved', 'approved', 'rejected', 'pending', 'cancelled'])[1 + g % 5], NULL, 'reserved', 'committed', 'authorized', true, true
FROM generate_series(1, $1::bigint) g`, n-have)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ANALYZE reporting.order_lines_v2`); err != nil {
			b.Fatal(err)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM reporting.order_lines_v2`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	return have
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }

func round(v float64, digits int) float64 {
	f := 1.0
	for range digits {
		f *= 10
	}
	return float64(int64(v*f+0.5)) / f
}
