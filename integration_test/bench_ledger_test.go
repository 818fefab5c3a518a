package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/pgserver"
	"github.com/cairn-dev/cairn/testenv"
)

// Shape of the ledger benchmark. CAIRN_BENCH_SECONDS shortens each measured
// phase (default 20 s).
const (
	ledgerBenchAccounts       = 1_000
	ledgerBenchDepositSubject = "events.ledger.deposited.v1"
	ledgerBenchPgbenchThreads = 2
	ledgerBenchArrivalTimeout = 5 * time.Minute
	ledgerBenchDefaultPool    = 32 // CAIRN_DATABASE_MAX_CONNS's default
)

// BenchmarkLedger measures the ledger's deposit as users see it: HTTP
// requests to a separate `cairn serve` process over a PostgreSQL with durable
// commits, events relayed to the JetStream of Cairn's embedded NATS (as
// `make run` deploys it) and counted by a core NATS subscriber logged in with
// the read-only subscriber account. CAIRN_NATS_URL runs Cairn against an
// external NATS instead. Run it once:
//
//	go test ./integration_test -run '^$' -bench '^BenchmarkLedger$' -benchtime 1x -timeout 30m
//
// Phases: deposits to distinct accounts over 16 and 64 HTTP connections,
// deposits to one hot account over 16, and, as the ceiling, pgbench running
// the same writes as plain SQL (testdata/pgbench_deposit.sql) against the
// same server at 16 and 64 connections. It fails on any failed request and
// on any lost or duplicated event, and prints one JSON summary line.
//
// CAIRN_DATABASE_MAX_CONNS is passed on to the cairn process (default 32).
func BenchmarkLedger(b *testing.B) {
	ctx := context.Background()
	dur := benchEnvSeconds(b, "CAIRN_BENCH_SECONDS", 20*time.Second)
	pgbenchBin := ledgerFindPgbench(b)
	script, err := filepath.Abs(filepath.Join("testdata", "pgbench_deposit.sql"))
	if err != nil {
		b.Fatal(err)
	}

	db := testenv.MustDB(b)
	pool := benchPool(b, db.URL, 4)
	benchRequireDurable(b, pool)

	cairnConns := ledgerBenchDefaultPool
	cairnEnv := map[string]string{
		"CAIRN_DATABASE_URL":       db.URL,
		"CAIRN_NATS_SYNC_INTERVAL": "1s",
	}
	// NATS is Cairn's embedded server, as `make run` deploys it, and the
	// counting subscriber reads it as an outside system would: with the
	// read-only account. CAIRN_NATS_URL runs against an external server.
	externalNATS := os.Getenv("CAIRN_NATS_URL") != ""
	var subscriberURL string
	if externalNATS {
		nt := benchMustNATS(b)
		cairnEnv["CAIRN_NATS_URL"], cairnEnv["CAIRN_NATS_REPLICAS"] = nt.URL, strconv.Itoa(nt.Replicas)
		subscriberURL = nt.URL
	} else {
		port := freePort(b)
		cairnEnv["CAIRN_NATS_LISTEN"] = fmt.Sprintf("127.0.0.1:%d", port)
		cairnEnv["CAIRN_NATS_SUBSCRIBER_PASSWORD"] = "bench-reader"
		subscriberURL = fmt.Sprintf("nats://subscriber:bench-reader@127.0.0.1:%d", port)
	}
	if s := os.Getenv("CAIRN_DATABASE_MAX_CONNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("CAIRN_DATABASE_MAX_CONNS=%q: %v", s, err)
		}
		cairnConns = n
		cairnEnv["CAIRN_DATABASE_MAX_CONNS"] = s
	}
	ledgerRequireConnections(b, pool, cairnConns+64+16)
	var pgVersion string
	if err := pool.QueryRow(ctx, `SHOW server_version`).Scan(&pgVersion); err != nil {
		b.Fatal(err)
	}
	pgPid := ledgerPostmasterPid(b, pool)

	p := startCairn(b, cairnEnv)
	sc, err := nats.Connect(subscriberURL, nats.Name("cairn-bench-ledger-subscriber"))
	if err != nil {
		b.Fatalf("subscriber connection: %v", err)
	}
	b.Cleanup(sc.Close)
	env := &ledgerEnv{
		base: p.HTTP + "/api/v1", pool: pool, sc: sc, cairnPid: p.Pid(), pgPid: pgPid,
		externalNATS: externalNATS,
	}
	openStart := time.Now()
	env.accounts = ledgerOpenAccounts(b, env.base, ledgerBenchAccounts, 16)
	b.Logf("opened %d accounts over HTTP in %s; PostgreSQL %s, cairn pool %d connections, phases of %s",
		len(env.accounts), time.Since(openStart).Round(time.Millisecond), pgVersion, cairnConns, dur)

	// The ceiling's database: plain tables of the ledger's shape on the same
	// server, no trigger.
	pgdb := testenv.MustEmptyDB(b)
	ledgerPgbenchSchema(b, pgdb.Pool)

	// A real deposited event, captured off NATS during the warm-up, is the
	// payload pgbench writes.
	one, err := sc.SubscribeSync(ledgerBenchDepositSubject)
	if err != nil {
		b.Fatal(err)
	}
	warm := ledgerRunDeposits(b, env, "warm-up", 64, false, min(2*time.Second, dur))
	msg, err := one.NextMsg(10 * time.Second)
	if err != nil {
		b.Fatalf("no deposited event arrived during the warm-up: %v", err)
	}
	_ = one.Unsubscribe()
	payload := string(msg.Data)
	b.Logf("warm-up: %d deposits at %.0f/s; event payload %d bytes", warm.ok, warm.rps, len(payload))
	ledgerRunPgbench(b, pgbenchBin, script, pgdb.URL, payload, 64, min(5*time.Second, dur), nil)

	sum := map[string]any{}
	put := func(prefix string, m map[string]float64) {
		for k, v := range m {
			sum[prefix+k] = v
		}
	}

	pg16 := ledgerRunPgbench(b, pgbenchBin, script, pgdb.URL, payload, 16, dur, env)
	d16 := ledgerRunDeposits(b, env, "distinct c16", 16, false, dur)
	pg64 := ledgerRunPgbench(b, pgbenchBin, script, pgdb.URL, payload, 64, dur, env)
	d64 := ledgerRunDeposits(b, env, "distinct c64", 64, false, dur)
	hot := ledgerRunDeposits(b, env, "hot c16", 16, true, dur)

	// Every deposit left exactly one entry: the opening one per account
	// plus one per 201.
	var entries int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.entries`).Scan(&entries); err != nil {
		b.Fatal(err)
	}
	if want := int64(ledgerBenchAccounts) + warm.ok + d16.ok + d64.ok + hot.ok; entries != want {
		b.Fatalf("ledger.entries holds %d rows, want %d", entries, want)
	}

	if err := p.Stop(30 * time.Second); err != nil {
		b.Logf("cairn did not stop cleanly: %v", err)
	}

	put("deposit_", d16.metrics("_c16"))
	put("deposit_", d64.metrics("_c64"))
	put("hot_account_", hot.metrics("_c16"))
	put("pgbench_", pg16.metrics("_c16"))
	put("pgbench_", pg64.metrics("_c64"))
	sum["ratio_c16"] = benchRound(d16.rps/pg16.tps, 3)
	sum["ratio_c64"] = benchRound(d64.rps/pg64.tps, 3)
	sum["nats_arrival_per_s_c16"] = benchRound(d16.arrivalRate, 0)
	sum["nats_arrival_per_s_c64"] = benchRound(d64.arrivalRate, 0)
	sum["nats_arrival_per_s_hot_c16"] = benchRound(hot.arrivalRate, 0)
	sum["nats_lag_ms_c16"] = benchRound(benchMS(d16.lag), 1)
	sum["nats_lag_ms_c64"] = benchRound(benchMS(d64.lag), 1)
	sum["nats_lag_ms_hot_c16"] = benchRound(benchMS(hot.lag), 1)
	sum["ledger_seconds"] = benchRound(dur.Seconds(), 3)
	sum["ledger_accounts"] = ledgerBenchAccounts
	sum["ledger_cairn_db_conns"] = cairnConns
	sum["ledger_event_bytes"] = len(payload)
	sum["ledger_postgres"] = pgVersion

	for _, m := range []struct {
		v    float64
		unit string
	}{
		{d16.rps, "deposit_rps_c16"},
		{benchMS(d16.p99), "deposit_p99_ms_c16"},
		{d64.rps, "deposit_rps_c64"},
		{benchMS(d64.p99), "deposit_p99_ms_c64"},
		{hot.rps, "hot_account_rps_c16"},
		{pg16.tps, "pgbench_tps_c16"},
		{pg64.tps, "pgbench_tps_c64"},
		{d16.rps / pg16.tps, "ratio_c16"},
		{d64.rps / pg64.tps, "ratio_c64"},
		{d16.arrivalRate, "nats_arrivals/s_c16"},
	} {
		b.ReportMetric(m.v, m.unit)
	}
	b.ReportMetric(0, "ns/op")
	rest, err := json.Marshal(sum)
	if err != nil {
		b.Fatal(err)
	}
	// "bench" first whatever the other keys sort as; the testing package has
	// printed the benchmark's name without a newline.
	fmt.Print("\n" + `{"bench":"ledger",` + string(rest[1:]) + "\n")
}

// ledgerEnv is what every deposit phase runs against.
type ledgerEnv struct {
	base         string // http://host:port/api/v1
	accounts     []string
	pool         *pgxpool.Pool // the cairn database
	sc           *nats.Conn
	cairnPid     int
	pgPid        int // postmaster, 0 when not on this machine
	externalNATS bool
}

// ledgerFindPgbench finds pgbench as the harness finds postgres: next to the
// server binaries first, then on PATH.
func ledgerFindPgbench(tb testing.TB) string {
	tb.Helper()
	if dir, err := pgserver.FindBinDir(); err == nil {
		if p := filepath.Join(dir, "pgbench"); ledgerIsExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p
	}
	tb.Fatal("pgbench not found next to the PostgreSQL server binaries or on PATH: install the Debian package postgresql-contrib (or postgresql-client) that matches the server")
	return ""
}

func ledgerIsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// ledgerRequireConnections fails unless the server has room for need more
// connections than are open now.
func ledgerRequireConnections(tb testing.TB, pool *pgxpool.Pool, need int) {
	tb.Helper()
	var maxConns, reserved, used int
	err := pool.QueryRow(context.Background(), `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int`).Scan(&maxConns, &reserved, &used)
	if err != nil {
		tb.Fatalf("read max_connections: %v", err)
	}
	if free := maxConns - reserved - used; free < need {
		tb.Fatalf("PostgreSQL has max_connections=%d (%d reserved, %d in use): %d free, this benchmark needs %d (cairn's pool, 64 pgbench clients and its own)",
			maxConns, reserved, used, free, need)
	}
}

// ledgerQuiesce starts a phase from the same state: the outbox emptied by
// the relay and a fresh checkpoint, so none falls inside the window.
func ledgerQuiesce(tb testing.TB, env *ledgerEnv) {
	tb.Helper()
	benchWaitOutboxEmpty(tb, env.pool, time.Minute)
	if _, err := env.pool.Exec(context.Background(), `CHECKPOINT`); err != nil {
		tb.Logf("CHECKPOINT: %v (phases may overlap a checkpoint)", err)
	}
}

func ledgerClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
		Timeout: time.Minute,
	}
}

// ledgerPost sends body and reads the whole response into buf.
func ledgerPost(c *http.Client, url string, body []byte, buf *bytes.Buffer) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, err
}

func ledgerOpenAccounts(tb testing.TB, base string, n, conns int) []string {
	tb.Helper()
	c := ledgerClient(conns)
	defer c.CloseIdleConnections()
	ids := make([]string, n)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body := fmt.Appendf(nil, `{"owner":"bench %d","currency":"EUR"}`, i)
				status, err := ledgerPost(c, base+"/accounts", body, &buf)
				var a struct {
					ID string `json:"id"`
				}
				if err == nil && status == http.StatusCreated {
					err = json.Unmarshal(buf.Bytes(), &a)
				} else if err == nil {
					err = fmt.Errorf("status %d: %s", status, buf.String())
				}
				if err != nil || a.ID == "" {
					failed.CompareAndSwap(nil, fmt.Errorf("open account %d: %v", i, err))
					return
				}
				ids[i] = a.ID
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		tb.Fatal(err)
	}
	return ids
}

// ledgerResult is one deposit phase.
type ledgerResult struct {
	ok          int64
	window      time.Duration
	rps         float64
	p50, p99    time.Duration
	max         time.Duration
	arrivalRate float64 // events that reached the subscriber within the window, per second
	lag         time.Duration
	cpu         map[string]float64
	walPerTx    float64
}

func (r ledgerResult) metrics(suffix string) map[string]float64 {
	m := map[string]float64{
		"rps" + suffix:              benchRound(r.rps, 0),
		"p50_ms" + suffix:           benchRound(benchMS(r.p50), 2),
		"p99_ms" + suffix:           benchRound(benchMS(r.p99), 2),
		"max_ms" + suffix:           benchRound(benchMS(r.max), 2),
		"requests" + suffix:         float64(r.ok),
		"wal_bytes_per_tx" + suffix: benchRound(r.walPerTx, 0),
	}
	for k, v := range r.cpu {
		m[k+suffix] = v
	}
	return m
}

var ledgerEventIDField = []byte(`"event_id":"`)

// ledgerRunDeposits has conns goroutines, one HTTP connection each, POST
// deposits of 1 back to back for dur. Without hot, goroutine w of conns only
// uses accounts w, w+conns, w+2*conns, ..., picked at random, so no two
// requests in flight share an account; with hot, all use the first account.
func ledgerRunDeposits(b testing.TB, env *ledgerEnv, name string, conns int, hot bool, dur time.Duration) ledgerResult {
	ledgerQuiesce(b, env)
	client := ledgerClient(conns)
	defer client.CloseIdleConnections()
	urls := make([]string, len(env.accounts))
	for i, id := range env.accounts {
		urls[i] = env.base + "/accounts/" + id + "/deposits"
	}
	body := []byte(`{"amount":1}`)
	arr := benchSubscribe(b, env.sc, ledgerBenchDepositSubject, 0)
	lats := make([][]time.Duration, conns)
	ids := make([][]string, conns)
	var errCount atomic.Int64
	var firstErr atomic.Value

	lsn := ledgerWALLSN(b, env.pool)
	cpu0 := ledgerSampleCPU(env)
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w)))
			choices := (len(urls) - 1 - w) / conns
			lat := make([]time.Duration, 0, 1024)
			evs := make([]string, 0, 1024)
			var buf bytes.Buffer
			for time.Now().Before(end) {
				idx := 0
				if !hot {
					idx = w + conns*rng.IntN(choices+1)
				}
				t0 := time.Now()
				status, err := ledgerPost(client, urls[idx], body, &buf)
				d := time.Since(t0)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("status %d: %s", status, buf.String())
				}
				var id string
				if err == nil {
					i := bytes.Index(buf.Bytes(), ledgerEventIDField)
					if j := i + len(ledgerEventIDField); i < 0 || len(buf.Bytes()) < j+36 {
						err = fmt.Errorf("no event_id in %s", buf.String())
					} else {
						id = string(buf.Bytes()[j : j+36])
					}
				}
				if err != nil {
					if errCount.Add(1) == 1 {
						firstErr.Store(err)
					}
					continue
				}
				lat = append(lat, d)
				evs = append(evs, id)
			}
			lats[w], ids[w] = lat, evs
		}()
	}
	wg.Wait()
	windowEnd := time.Now()
	cpu1 := ledgerSampleCPU(env)
	arrivedInWindow := arr.n.Load()
	window := windowEnd.Sub(start)
	walBytes := ledgerWALSince(b, env.pool, lsn)
	if n := errCount.Load(); n > 0 {
		b.Fatalf("%s: %d deposits failed; the first: %v", name, n, firstErr.Load())
	}

	var all []time.Duration
	var total int64
	want := make(map[string]struct{})
	for w := range conns {
		all = append(all, lats[w]...)
		for _, id := range ids[w] {
			want[id] = struct{}{}
		}
	}
	total = int64(len(all))
	if int64(len(want)) != total {
		b.Fatalf("%s: %d deposits answered with only %d distinct event ids", name, total, len(want))
	}
	if total == 0 {
		b.Fatalf("%s: no deposit completed", name)
	}

	// Wait for every event of this phase at the subscriber.
	deadline := time.Now().Add(ledgerBenchArrivalTimeout)
	var last time.Time
	for {
		if arr.n.Load() >= total {
			missing := 0
			last = time.Time{}
			arr.mu.Lock()
			for id := range want {
				at, ok := arr.at[id]
				if !ok {
					missing++
				} else if at.After(last) {
					last = at
				}
			}
			arr.mu.Unlock()
			if missing == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: only %d of %d deposited events arrived within %s", name, arr.n.Load(), total, ledgerBenchArrivalTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // so that a late duplicate would show
	_ = arr.sub.Unsubscribe()
	dropped, _ := arr.sub.Dropped()
	arr.mu.Lock()
	extra, dups, bad := len(arr.at)-len(want), arr.dups, arr.bad
	arr.mu.Unlock()
	if dups > 0 || bad > 0 || dropped > 0 || (extra > 0 && !env.externalNATS) {
		b.Fatalf("%s: %d duplicate deliveries, %d unreadable messages, %d dropped by the subscriber, %d events nobody here deposited",
			name, dups, bad, dropped, extra)
	}

	benchSortDurations(all)
	r := ledgerResult{
		ok:          total,
		window:      window,
		rps:         float64(total) / window.Seconds(),
		p50:         benchPercentile(all, 50),
		p99:         benchPercentile(all, 99),
		max:         all[len(all)-1],
		arrivalRate: float64(arrivedInWindow) / window.Seconds(),
		lag:         max(0, last.Sub(windowEnd)), // 0: all had arrived when the last response came back
		cpu:         cpu1.cores(cpu0, window),
		walPerTx:    float64(walBytes) / float64(total),
	}
	b.Logf("%s: %d connections, %d deposits in %s: %.0f/s, latency p50 %.2f p99 %.2f max %.2f ms; NATS: %.0f/s arrived in the window, the last %s after it; CPU cores: cairn %.2f postgres %.2f bench process (load, subscriber) %.2f machine %.2f; WAL %.0f bytes/deposit",
		name, conns, total, window.Round(time.Millisecond), r.rps, benchMS(r.p50), benchMS(r.p99), benchMS(r.max),
		r.arrivalRate, r.lag.Round(time.Millisecond), r.cpu["cpu_cairn"], r.cpu["cpu_postgres"], r.cpu["cpu_bench"], r.cpu["cpu_machine"], r.walPerTx)
	return r
}
