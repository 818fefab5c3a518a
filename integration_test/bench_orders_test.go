package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/testenv"
)

// Shape of the orders benchmark. CAIRN_BENCH_SECONDS shortens the measured
// phases (default 20 s).
const (
	ordersBenchCustomers = 200
	ordersBenchSKUs      = 50
	// ordersBenchDefaultRate is above the target (150 approved/s): offered
	// exactly 150, approved/s could never show the target met, and a
	// pipeline at its limit would look like one with room to spare.
	ordersBenchDefaultRate = 180  // orders/s offered, sustained phase (CAIRN_BENCH_ORDERS_RATE)
	ordersBenchLatencyRate = 50   // orders/s, open loop, latency phase
	ordersBenchClients     = 24   // closed loop, burst phase
	ordersBenchBurst       = 3000 // orders, burst phase
	ordersBenchTimerOrders = 500
	ordersBenchTimerStep   = 2 * time.Second
	// CAIRN_DATABASE_MAX_CONNS's default: consumer handlers, and so saga
	// steps, get a quarter of it.
	ordersBenchDefaultConns = 32
)

// BenchmarkOrders measures orders through to approval as users see them:
// HTTP requests to a `cairn serve` process (its embedded NATS, as `make
// run` deploys it) over a PostgreSQL with durable commits, with the
// payment gateway a real HTTP server in the benchmark's process. Run it
// once:
//
//	go test ./integration_test -run '^$' -bench '^BenchmarkOrders$' -benchtime 1x -timeout 30m
//
// Phases:
//   - sustained: 180 orders/s offered, above the target of 150 approved/s
//     (open loop; CAIRN_BENCH_ORDERS_RATE for another rate) for the phase;
//     approved/s counts the orders approved within it after its first 2 s
//     (about the offered rate when the pipeline keeps up; below it, what
//     the pipeline sustains),
//     with how long after the last
//     placement the last approval came (a pipeline that does not keep up
//     falls further behind), placed → approved and the transactions the
//     database committed per order;
//   - latency: 50 orders/s, open loop; placed → approved per order, from
//     the order's creation to its approval's history row;
//   - burst: 3,000 orders placed by 24 clients as fast as they are
//     answered; orders/s from the first placement to the last approval,
//     what the pipeline can do when it is the bottleneck;
//   - timers: cairn restarted with a 2 s step timeout and the gateway
//     down, 500 orders at 50/s whose payment steps all time out; how late
//     each timer fired after it was due.
//
// CAIRN_DATABASE_MAX_CONNS is passed on to the cairn process (default 32:
// 8 connections for consumer handlers). It fails on any failed request or
// an order not approved, and prints one JSON summary line.
func BenchmarkOrders(b *testing.B) {
	ctx := context.Background()
	dur := benchEnvSeconds(b, "CAIRN_BENCH_SECONDS", 20*time.Second)
	db := testenv.MustDB(b)
	pool := benchPool(b, db.URL, 4)
	benchRequireDurable(b, pool)
	gw := paymentstest.Start(b)
	env := map[string]string{
		"CAIRN_DATABASE_URL":        db.URL,
		"CAIRN_NATS_LISTEN":         fmt.Sprintf("127.0.0.1:%d", freePort(b)),
		"CAIRN_PAYMENTS_URL":        gw.URL,
		"CAIRN_ORDERS_STEP_TIMEOUT": "30s",
	}
	conns := ordersBenchDefaultConns
	if s := os.Getenv("CAIRN_DATABASE_MAX_CONNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("CAIRN_DATABASE_MAX_CONNS=%q: %v", s, err)
		}
		conns = n
		env["CAIRN_DATABASE_MAX_CONNS"] = s
	}
	p := startCairn(b, env)
	api := newOrdersAPI(p.HTTP, "")
	customers, skus := ordersBenchSetup(b, api)
	ordersKnown(b, pool, len(customers), len(skus))
	w := &ordersBenchWorld{api: api, pool: pool, customers: customers, skus: skus}

	// Warm-up, then the phases.
	w.openLoop(b, ordersBenchLatencyRate, min(3*time.Second, dur))
	ordersSettled(b, pool, nil, 2*time.Minute, time.Second)

	rate := ordersBenchRate(b)
	cpu0, commits0, xid0 := benchReadHostCPU(), ordersCommits(b, pool), ordersXID(b, pool)
	sus := w.openLoop(b, rate, dur)
	// Steady state: the approvals of the phase after its first 2 s (the
	// first orders take a while to come through), per second.
	steady := dur - 2*time.Second
	approvedIn := w.approvedBetween(b, sus.start.Add(2*time.Second), sus.start.Add(dur))
	ordersSettled(b, pool, nil, 5*time.Minute, time.Second)
	behind := w.lastApproval(b, sus.ids).Sub(sus.start.Add(sus.took))
	commits, xids := ordersCommits(b, pool)-commits0, ordersXID(b, pool)-xid0
	busy := cpu0.busyPercent(benchReadHostCPU())
	susLat := w.latencies(b, sus.ids)
	b.Logf("sustained: %d orders/s offered for %s, %d placed; %.1f approved/s after the first 2 s; the last approved %s after the last placed; placed -> approved p50 %.1f ms, p99 %.1f ms; machine %.0f%% busy; %.1f commits, %.1f write transactions per order",
		rate, dur, sus.placed, float64(approvedIn)/steady.Seconds(), behind.Round(time.Millisecond), benchMS(benchPercentile(susLat, 50)), benchMS(benchPercentile(susLat, 99)),
		busy, float64(commits)/float64(sus.placed), float64(xids)/float64(sus.placed))

	lat := w.openLoop(b, ordersBenchLatencyRate, dur)
	ordersSettled(b, pool, nil, 2*time.Minute, time.Second)
	latencies := w.latencies(b, lat.ids)
	p50, p99, top := benchPercentile(latencies, 50), benchPercentile(latencies, 99), benchPercentile(latencies, 100)
	b.Logf("latency at %d orders/s: %d orders, placed -> approved p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		ordersBenchLatencyRate, len(latencies), benchMS(p50), benchMS(p99), benchMS(top))

	// Capacity: a burst placed as fast as the clients are answered, then
	// the time until the last of it is approved.
	burst := w.closedLoopN(b, ordersBenchClients, ordersBenchBurst)
	ordersSettled(b, pool, nil, 10*time.Minute, time.Second)
	last := w.lastApproval(b, burst.ids)
	capacity := float64(len(burst.ids)) / last.Sub(burst.start).Seconds()
	b.Logf("capacity: a burst of %d orders placed in %s by %d clients, the last approved after %s: %.0f orders/s through to approved",
		len(burst.ids), burst.took.Round(time.Millisecond), ordersBenchClients, last.Sub(burst.start).Round(time.Millisecond), capacity)

	// Timers: restart with a short step timeout and the gateway down.
	if err := p.Stop(30 * time.Second); err != nil {
		b.Fatalf("stop cairn: %v", err)
	}
	env["CAIRN_ORDERS_STEP_TIMEOUT"] = ordersBenchTimerStep.String()
	p = startCairn(b, env)
	api.point(p.HTTP)
	gw.SetDown(true)
	timed := w.openLoop(b, ordersBenchLatencyRate, ordersBenchTimerOrders*time.Second/ordersBenchLatencyRate)
	waitUntil(b, 2*time.Minute, "every payment step to time out", func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE status = 'rejected' AND reason = 'timeout'`).Scan(&n)
		return n >= len(timed.ids)
	})
	gw.SetDown(false)
	late := ordersTimerLateness(b, pool)
	if os.Getenv("CAIRN_BENCH_ORDERS_DEBUG") != "" {
		rows, _ := pool.Query(ctx, `SELECT cause_type, to_state, due_at, extract(epoch FROM at - due_at) FROM saga.history WHERE due_at IS NOT NULL AND at - due_at > interval '300 ms' ORDER BY due_at`)
		for rows.Next() {
			var ct, st string
			var due time.Time
			var l float64
			_ = rows.Scan(&ct, &st, &due, &l)
			b.Logf("late timer: %s -> %s due +%s late %.0f ms", ct, st, due.Sub(timed.start).Round(time.Millisecond), l*1000)
		}
		rows.Close()
	}
	lp50, lp99, ltop := benchPercentile(late, 50), benchPercentile(late, 99), benchPercentile(late, 100)
	b.Logf("timers: %d fired, late after due p50 %.1f ms, p99 %.1f ms, max %.1f ms", len(late), benchMS(lp50), benchMS(lp99), benchMS(ltop))
	if err := p.Stop(30 * time.Second); err != nil {
		b.Logf("cairn did not stop cleanly: %v", err)
	}

	b.ReportMetric(float64(approvedIn)/steady.Seconds(), "approved/s_sustained")
	b.ReportMetric(capacity, "approved/s_burst")
	b.ReportMetric(benchMS(p99), "p99_ms_at_50/s")
	b.ReportMetric(0, "ns/op")
	sum := map[string]any{
		"orders_offered_per_s":             rate,
		"orders_approved_per_s":            benchRound(float64(approvedIn)/steady.Seconds(), 1),
		"orders_last_approved_after_ms":    benchRound(benchMS(behind), 0),
		"orders_sustained_p50_ms":          benchRound(benchMS(benchPercentile(susLat, 50)), 1),
		"orders_sustained_p99_ms":          benchRound(benchMS(benchPercentile(susLat, 99)), 1),
		"orders_seconds":                   benchRound(dur.Seconds(), 3),
		"orders_machine_busy_percent":      benchRound(busy, 0),
		"orders_commits_per_order":         benchRound(float64(commits)/float64(sus.placed), 1),
		"orders_write_tx_per_order":        benchRound(float64(xids)/float64(sus.placed), 1),
		"orders_burst":                     len(burst.ids),
		"orders_burst_clients":             ordersBenchClients,
		"orders_burst_approved_per_s":      benchRound(capacity, 1),
		"orders_latency_rate":              ordersBenchLatencyRate,
		"orders_latency_p50_ms":            benchRound(benchMS(p50), 1),
		"orders_latency_p99_ms":            benchRound(benchMS(p99), 1),
		"orders_latency_max_ms":            benchRound(benchMS(top), 1),
		"orders_timers_fired":              len(late),
		"orders_timer_late_p50_ms":         benchRound(benchMS(lp50), 1),
		"orders_timer_late_p99_ms":         benchRound(benchMS(lp99), 1),
		"orders_timer_late_max_ms":         benchRound(benchMS(ltop), 1),
		"orders_gateway_authorize_calls":   ordersAuthorizeCalls(gw),
		"orders_customers_skus_in_catalog": fmt.Sprintf("%d/%d", len(customers), len(skus)),
		"orders_cairn_db_conns":            conns,
	}
	rest, err := json.Marshal(sum)
	if err != nil {
		b.Fatal(err)
	}
	// "bench" first whatever the other keys sort as; the testing package has
	// printed the benchmark's name without a newline.
	fmt.Print("\n" + `{"bench":"orders",` + string(rest[1:]) + "\n")
}

// ordersBenchWorld is what every phase places orders against.
type ordersBenchWorld struct {
	api       *ordersAPI
	pool      *pgxpool.Pool
	customers []string
	skus      []string
	seq       atomic.Int64
}

// ordersBenchSetup creates customers whose credit never runs out and SKUs
// whose stock never does.
func ordersBenchSetup(b *testing.B, api *ordersAPI) (customers, skus []string) {
	for i := range ordersBenchCustomers {
		var c struct{ ID string }
		api.must(b, 201, "POST", "/customers", map[string]any{"name": fmt.Sprintf("bench %d", i), "credit_limit": eur(1_000_000_000_000)}, &c)
		customers = append(customers, c.ID)
	}
	for i := range ordersBenchSKUs {
		sku := fmt.Sprintf("bench-%02d", i)
		api.must(b, 201, "POST", "/inventory/items", map[string]any{"sku": sku, "name": sku, "unit_price": eur(int64(100 + i)), "on_hand": 1_000_000_000}, nil)
		skus = append(skus, sku)
	}
	return customers, skus
}

type ordersPhase struct {
	start  time.Time
	took   time.Duration
	placed int
	ids    []string
}

// place places one order of one or two lines.
func (w *ordersBenchWorld) place(b *testing.B, rng *rand.Rand) string {
	lines := []ordersLine{{w.skus[rng.IntN(len(w.skus))], 1 + int64(rng.IntN(3))}}
	if l := (ordersLine{w.skus[rng.IntN(len(w.skus))], 1}); rng.IntN(2) == 0 && l.SKU != lines[0].SKU {
		lines = append(lines, l)
	}
	var o struct{ ID string }
	status, err := w.api.call("POST", "/orders", map[string]any{"customer_id": w.customers[rng.IntN(len(w.customers))], "lines": lines}, &o)
	if status != 201 {
		b.Errorf("place: %d %v", status, err)
		return ""
	}
	return o.ID
}

// closedLoopN places n orders from clients concurrent clients.
func (w *ordersBenchWorld) closedLoopN(b *testing.B, clients, n int) ordersPhase {
	ph := ordersPhase{start: time.Now()}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), uint64(w.seq.Add(1))))
			for left.Add(-1) >= 0 {
				if id := w.place(b, rng); id != "" {
					mu.Lock()
					ph.ids = append(ph.ids, id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	ph.took = time.Since(ph.start)
	ph.placed = len(ph.ids)
	return ph
}

// lastApproval is when the last of ids was approved.
func (w *ordersBenchWorld) lastApproval(b *testing.B, ids []string) time.Time {
	var at time.Time
	var n int
	if err := w.pool.QueryRow(context.Background(), `SELECT max(at), count(*) FROM orders.status_changes
		WHERE to_status = 'approved' AND order_id = ANY($1::uuid[])`, ids).Scan(&at, &n); err != nil {
		b.Fatal(err)
	}
	if n != len(ids) {
		b.Errorf("%d of %d orders approved", n, len(ids))
	}
	return at
}

// ordersBenchRate is the sustained phase's offered rate.
func ordersBenchRate(b *testing.B) int {
	if s := os.Getenv("CAIRN_BENCH_ORDERS_RATE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("CAIRN_BENCH_ORDERS_RATE=%q: want orders per second", s)
		}
		return n
	}
	return ordersBenchDefaultRate
}

// openLoop places rate orders a second for d, each on its own schedule.
func (w *ordersBenchWorld) openLoop(b *testing.B, rate int, d time.Duration) ordersPhase {
	ph := ordersPhase{start: time.Now()}
	n := int(d.Seconds() * float64(rate))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		time.Sleep(time.Until(ph.start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		ph.took = time.Since(ph.start)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(w.seq.Add(1))))
			if id := w.place(b, rng); id != "" {
				mu.Lock()
				ph.ids = append(ph.ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ph.placed = len(ph.ids)
	return ph
}

// approvedBetween counts the orders approved in [from, to).
func (w *ordersBenchWorld) approvedBetween(b *testing.B, from, to time.Time) int {
	var n int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM orders.status_changes
		WHERE to_status = 'approved' AND at >= $1 AND at < $2`, from, to).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// latencies are placed → approved of the orders ids, sorted; an order not
// approved fails the benchmark.
func (w *ordersBenchWorld) latencies(b *testing.B, ids []string) []time.Duration {
	rows, err := w.pool.Query(context.Background(), `SELECT o.id::text, o.status, coalesce(extract(epoch FROM s.at - o.created_at), -1)
		FROM orders.orders o LEFT JOIN orders.status_changes s ON s.order_id = o.id AND s.to_status = 'approved'
		WHERE o.id = ANY($1::uuid[])`, ids)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var id, status string
		var secs float64
		if err := rows.Scan(&id, &status, &secs); err != nil {
			b.Fatal(err)
		}
		if status != "approved" {
			b.Errorf("order %s is %s", id, status)
			continue
		}
		out = append(out, time.Duration(secs*float64(time.Second)))
	}
	if len(out) != len(ids) {
		b.Errorf("%d of %d orders found approved", len(out), len(ids))
	}
	benchSortDurations(out)
	return out
}

// ordersTimerLateness is how late each timer step fired after it was due.
func ordersTimerLateness(b *testing.B, pool *pgxpool.Pool) []time.Duration {
	rows, err := pool.Query(context.Background(), `SELECT extract(epoch FROM at - due_at) FROM saga.history WHERE due_at IS NOT NULL`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var secs float64
		if err := rows.Scan(&secs); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Duration(secs*float64(time.Second)))
	}
	benchSortDurations(out)
	return out
}

// ordersCommits is the database's committed transactions so far.
func ordersCommits(b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// ordersXID is the next transaction id: the write transactions of the
// whole server so far.
func ordersXID(b *testing.B, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func ordersAuthorizeCalls(gw *paymentstest.Gateway) int {
	n := 0
	for _, k := range gw.Keys() {
		n += k.AuthorizeCalls
	}
	return n
}
