package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

// Shape of the benchmark. The durations of the e2e and latency phases can be
// shortened with CAIRN_BENCH_E2E_SECONDS and CAIRN_BENCH_LATENCY_SECONDS.
const (
	benchDrainEvents    = 100_000
	benchDrainTxSize    = 100
	benchDrainLoaders   = 4
	benchKeys           = 2_000
	benchE2EWriters     = 16
	benchLatencyRate    = 1_000 // events/s offered
	benchLatencyWriters = 4
	benchArrivalTimeout = 5 * time.Minute
	benchBacklogGap     = 100 * time.Millisecond
)

// BenchmarkRelay measures the relay as it runs in production: a separate
// `cairn serve` process over a PostgreSQL with durable commits and a
// JetStream file store, seen from a core NATS subscriber. Run it once:
//
//	go test ./integration_test -run '^$' -bench '^BenchmarkRelay$' -benchtime 1x -timeout 30m
//
// Phases: drain (a backlog of 100,000 events committed while no relay ran),
// end-to-end (16 writers committing single-event transactions flat out) and
// latency (a steady 1,000 events/s). It fails on any lost or duplicated
// event, and prints one JSON summary line.
func BenchmarkRelay(b *testing.B) {
	ctx := context.Background()
	db := testenv.MustDB(b)
	nt := benchMustNATS(b)
	pool := benchPool(b, db.URL, benchE2EWriters+4)
	benchRequireDurable(b, pool)

	sc, err := nats.Connect(nt.URL, nats.Name("cairn-bench-subscriber"))
	if err != nil {
		b.Fatalf("subscriber connection: %v", err)
	}
	b.Cleanup(sc.Close)

	// Event types unique to this run, so that counts in a shared external
	// stream are this run's alone.
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	drainType := "bench.drain_r" + tag + ".v1"
	e2eType := "bench.e2e_r" + tag + ".v1"
	latType := "bench.latency_r" + tag + ".v1"
	for _, typ := range []string{drainType, e2eType, latType} {
		outbox.Declare[benchData](outbox.EventSpec{Type: typ, Visibility: outbox.Public, Description: "A relay benchmark event."})
	}

	sum := map[string]any{"bench": "relay"}

	// ---- 1. drain -------------------------------------------------------
	loadStart := time.Now()
	drainIDs := benchLoadBacklog(b, pool, drainType)
	b.Logf("drain: committed %d events in %d-event transactions in %s", benchDrainEvents, benchDrainTxSize, time.Since(loadStart).Round(time.Millisecond))
	var backlog int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events`).Scan(&backlog); err != nil || backlog != benchDrainEvents {
		b.Fatalf("outbox holds %d rows before the relay starts (err %v), want %d", backlog, err, benchDrainEvents)
	}

	drainArr := benchSubscribe(b, sc, outbox.Subject(drainType, outbox.Public), benchDrainEvents)
	// Keep the relay on standby while the process starts, so its CPU can be
	// measured from a baseline taken just before it may lead.
	release := benchHoldRelayLease(b, pool)
	p := startCairn(b, map[string]string{
		"CAIRN_DATABASE_URL":       db.URL,
		"CAIRN_NATS_URL":           nt.URL,
		"CAIRN_NATS_REPLICAS":      strconv.Itoa(nt.Replicas),
		"CAIRN_NATS_SYNC_INTERVAL": "1s",
	})
	pid := p.Pid()
	if _, ok := p.logs.find("relay is leader"); ok {
		b.Fatal("the relay led while the benchmark held its lease")
	}
	rss := benchSampleRSS(pid, 10*time.Millisecond)
	cpu0, err := benchProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	release()
	leaderAt := benchLogTime(b, p.WaitLog("relay is leader", 30*time.Second))
	// Whole-machine and own-process CPU from here on (a few ms after the
	// leader's log line): context for the relay's own figure.
	host0, self0, selfAt := benchReadHostCPU(), benchSelfCPU(), time.Now()
	select {
	case <-drainArr.done:
	case <-time.After(benchArrivalTimeout):
		b.Fatalf("drain: only %d of %d events arrived within %s", drainArr.n.Load(), benchDrainEvents, benchArrivalTimeout)
	}
	cpu1, err := benchProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	host1, self1, selfEnd := benchReadHostCPU(), benchSelfCPU(), time.Now()
	peakRSS := rss.Stop()
	drainEnd := drainArr.lastArrival()
	drainDur := drainEnd.Sub(leaderAt)
	// The stream must hold every event exactly once too (deduplication would
	// hide a republish from this count, but not a loss).
	streamCount := benchWaitStreamCount(b, nt, outbox.PublicStream, outbox.Subject(drainType, outbox.Public), benchDrainEvents)
	drainArr.verify(b, "drain", drainIDs)
	_ = drainArr.sub.Unsubscribe()

	drainRate := float64(benchDrainEvents) / drainDur.Seconds()
	drainCores := (cpu1 - cpu0).Seconds() / drainDur.Seconds()
	selfCores := (self1 - self0).Seconds() / selfEnd.Sub(selfAt).Seconds()
	hostBusy := host0.busyPercent(host1)
	b.Logf("drain: leader at %s, last of %d events arrived %s later: %.0f events/s; stream holds %d; relay process peak RSS %.1f MB, CPU %.2fs = %.2f cores; meanwhile this process (subscriber%s) %.2f cores, machine %.0f%% busy",
		leaderAt.Format(time.RFC3339Nano), benchDrainEvents, drainDur.Round(time.Millisecond), drainRate, streamCount,
		float64(peakRSS)/(1<<20), (cpu1 - cpu0).Seconds(), drainCores, map[bool]string{true: " and NATS server", false: ""}[nt.Embedded], selfCores, hostBusy)
	sum["drain_events"] = benchDrainEvents
	sum["drain_seconds"] = benchRound(drainDur.Seconds(), 3)
	sum["drain_events_per_s"] = benchRound(drainRate, 0)
	sum["relay_rss_mb"] = benchRound(float64(peakRSS)/(1<<20), 1)
	sum["relay_cpu_cores_drain"] = benchRound(drainCores, 2)
	sum["bench_proc_cpu_cores_drain"] = benchRound(selfCores, 2)
	sum["host_cpu_busy_pct_drain"] = benchRound(hostBusy, 0)
	sum["nats_embedded"] = nt.Embedded

	// Let the relay delete the drained rows (after its delete delay) so the
	// next phase starts from an empty outbox.
	benchWaitOutboxEmpty(b, pool, time.Minute)

	// ---- 2. end-to-end --------------------------------------------------
	e2eDur := benchEnvSeconds(b, "CAIRN_BENCH_E2E_SECONDS", 20*time.Second)
	e2e := benchRunE2E(b, pool, sc, e2eType, e2eDur)
	for k, v := range e2e {
		sum[k] = v
	}
	benchWaitOutboxEmpty(b, pool, time.Minute)

	// ---- 3. latency -----------------------------------------------------
	latDur := benchEnvSeconds(b, "CAIRN_BENCH_LATENCY_SECONDS", 10*time.Second)
	for k, v := range benchRunLatency(b, pool, sc, latType, latDur) {
		sum[k] = v
	}

	if err := p.Stop(30 * time.Second); err != nil {
		b.Logf("cairn did not stop cleanly: %v", err)
	}

	for _, m := range []struct{ key, unit string }{
		{"drain_events_per_s", "drain_events/s"},
		{"e2e_commit_per_s", "e2e_commits/s"},
		{"e2e_arrival_per_s", "e2e_arrivals/s"},
		{"e2e_max_backlog", "e2e_max_backlog"},
		{"latency_p50_ms", "latency_p50_ms"},
		{"latency_p99_ms", "latency_p99_ms"},
		{"latency_max_ms", "latency_max_ms"},
		{"relay_rss_mb", "relay_rss_MB"},
		{"relay_cpu_cores_drain", "relay_cpu_cores"},
	} {
		b.ReportMetric(benchFloat(sum[m.key]), m.unit)
	}
	b.ReportMetric(0, "ns/op")
	line, err := json.Marshal(sum)
	if err != nil {
		b.Fatal(err)
	}
	// The testing package has printed the benchmark's name without a newline.
	fmt.Print("\n" + string(line) + "\n")
}

func benchFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return 0
}

// benchLoadBacklog commits benchDrainEvents events of typ, benchDrainTxSize
// per transaction, over benchKeys keys, and returns their ids.
func benchLoadBacklog(b testing.TB, pool *pgxpool.Pool, typ string) [][]string {
	ctx := context.Background()
	ids := make([][]string, benchDrainLoaders)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, benchDrainLoaders)
	for w := range benchDrainLoaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := make([]outbox.Event, benchDrainTxSize)
			for {
				t := next.Add(1) - 1
				if t >= benchDrainEvents/benchDrainTxSize {
					return
				}
				for i := range events {
					seq := t*benchDrainTxSize + int64(i)
					key := "acct-" + strconv.FormatInt(seq%benchKeys, 10)
					events[i] = outbox.Event{Type: typ, Key: key, Data: benchData{Seq: seq, Writer: w, Key: key, Note: benchNote}}
				}
				tx, err := pool.Begin(ctx)
				if err != nil {
					errc <- err
					return
				}
				a, err := outbox.Append(ctx, tx, events...)
				if err == nil {
					err = tx.Commit(ctx)
				}
				if err != nil {
					_ = tx.Rollback(ctx)
					errc <- err
					return
				}
				for _, e := range a {
					ids[w] = append(ids[w], e.ID)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatalf("load backlog: %v", err)
	}
	return ids
}

func benchWaitStreamCount(b testing.TB, nt *benchNATS, stream, subject string, want uint64) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n uint64
	for {
		var err error
		n, err = benchStreamCount(ctx, nt.JS, stream, subject)
		if err != nil {
			b.Fatalf("stream %s: %v", stream, err)
		}
		if n >= want || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Linger so that a late duplicate would show.
	time.Sleep(500 * time.Millisecond)
	n, err := benchStreamCount(ctx, nt.JS, stream, subject)
	if err != nil {
		b.Fatalf("stream %s: %v", stream, err)
	}
	if n != want {
		b.Fatalf("stream %s holds %d messages on %s, want exactly %d", stream, n, subject, want)
	}
	return n
}

func benchWaitOutboxEmpty(b testing.TB, pool *pgxpool.Pool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		var n int64
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox.events`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the relay left %d rows in the outbox after %s", n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchRunE2E has benchE2EWriters goroutines commit single-event transactions
// as fast as they can for dur, while a core subscriber counts arrivals.
func benchRunE2E(b testing.TB, pool *pgxpool.Pool, sc *nats.Conn, typ string, dur time.Duration) map[string]any {
	ctx := context.Background()
	arr := benchSubscribe(b, sc, outbox.Subject(typ, outbox.Public), 0)
	ids := make([][]string, benchE2EWriters)
	var committed atomic.Int64
	var failed atomic.Value
	var maxBacklog atomic.Int64
	stopSampling := make(chan struct{})
	samplerDone := make(chan struct{})
	// Table growth and vacuum pressure: the outbox should hold only the
	// backlog plus the rows kept for JetStream's sync, under any load.
	var table benchTableStats
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(benchBacklogGap)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			if d := committed.Load() - arr.n.Load(); d > maxBacklog.Load() {
				maxBacklog.Store(d)
			}
			if i%10 == 0 {
				table.sample(ctx, pool)
			}
		}
	}()
	host0 := benchReadHostCPU()
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for w := range benchE2EWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); time.Now().Before(end); i++ {
				key := fmt.Sprintf("e2e-%d-%d", w, i%(benchKeys/benchE2EWriters))
				id, _, err := benchCommitOne(ctx, pool, typ, key, benchData{Seq: i, Writer: w, Key: key, Note: benchNote})
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				ids[w] = append(ids[w], id)
				committed.Add(1)
			}
		}()
	}
	wg.Wait()
	windowEnd := time.Now()
	arrivedInWindow := arr.n.Load()
	hostBusy := host0.busyPercent(benchReadHostCPU())
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("e2e: commit: %v", err)
	}
	total := committed.Load()
	deadline := time.Now().Add(benchArrivalTimeout)
	for arr.n.Load() < total {
		if time.Now().After(deadline) {
			b.Fatalf("e2e: only %d of %d committed events arrived within %s", arr.n.Load(), total, benchArrivalTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stopSampling)
	<-samplerDone
	time.Sleep(500 * time.Millisecond) // so that a late duplicate would show
	arr.verify(b, "e2e", ids)
	_ = arr.sub.Unsubscribe()

	window := windowEnd.Sub(start)
	tail := arr.lastArrival().Sub(windowEnd)
	commitRate := float64(total) / window.Seconds()
	arrivalRate := float64(arrivedInWindow) / window.Seconds()
	b.Logf("e2e: %d writers committed %d single-event transactions in %s: %.0f/s; %d (%.1f%%) arrived within the window: %.0f/s; the rest within %s after it; max backlog (committed - arrived, sampled every %s) %d; machine %.0f%% busy; outbox.events at most %d live and %d dead rows, %.1f MB, %d autovacuums",
		benchE2EWriters, total, window.Round(time.Millisecond), commitRate, arrivedInWindow, 100*float64(arrivedInWindow)/float64(total), arrivalRate,
		tail.Round(time.Millisecond), benchBacklogGap, maxBacklog.Load(), hostBusy, table.maxLive, table.maxDead, float64(table.maxBytes)/(1<<20), table.autovacuums)
	return map[string]any{
		"e2e_seconds":           benchRound(window.Seconds(), 3),
		"e2e_committed":         total,
		"e2e_commit_per_s":      benchRound(commitRate, 0),
		"e2e_arrival_per_s":     benchRound(arrivalRate, 0),
		"e2e_tail_ms":           benchRound(benchMS(tail), 1),
		"e2e_max_backlog":       maxBacklog.Load(),
		"e2e_arrived_in_window": arrivedInWindow,
		"host_cpu_busy_pct_e2e": benchRound(hostBusy, 0),
		"outbox_max_rows":       table.maxLive,
		"outbox_max_dead_rows":  table.maxDead,
		"outbox_max_mb":         benchRound(float64(table.maxBytes)/(1<<20), 1),
		"outbox_autovacuums":    table.autovacuums,
	}
}

// benchTableStats tracks outbox.events' size while the e2e load runs.
type benchTableStats struct {
	maxLive, maxDead, maxBytes int64
	firstVacuums, autovacuums  int64
	sampled                    bool
}

func (s *benchTableStats) sample(ctx context.Context, pool *pgxpool.Pool) {
	var live, dead, bytes, vacuums int64
	err := pool.QueryRow(ctx, `SELECT n_live_tup, n_dead_tup, pg_total_relation_size(relid), autovacuum_count
		FROM pg_stat_user_tables WHERE schemaname = 'outbox' AND relname = 'events'`).Scan(&live, &dead, &bytes, &vacuums)
	if err != nil {
		return
	}
	if !s.sampled {
		s.firstVacuums, s.sampled = vacuums, true
	}
	s.maxLive, s.maxDead, s.maxBytes = max(s.maxLive, live), max(s.maxDead, dead), max(s.maxBytes, bytes)
	s.autovacuums = vacuums - s.firstVacuums
}

// benchRunLatency offers benchLatencyRate single-event transactions a second
// for dur, paced by a ticker, and measures from Commit's return to arrival at
// a core subscriber. The relay may see a commit before its writer goroutine
// sees Commit return, so the minimum can be slightly negative.
func benchRunLatency(b testing.TB, pool *pgxpool.Pool, sc *nats.Conn, typ string, dur time.Duration) map[string]any {
	ctx := context.Background()
	total := int(dur.Seconds() * benchLatencyRate)
	arr := benchSubscribe(b, sc, outbox.Subject(typ, outbox.Public), int64(total))
	interval := time.Second / benchLatencyRate
	jobs := make(chan int, total)
	type commit struct {
		id       string
		at       time.Time
		duration time.Duration
	}
	commits := make([][]commit, benchLatencyWriters)
	var failed atomic.Value
	host0 := benchReadHostCPU()
	start := time.Now()
	go func() {
		defer close(jobs)
		t := time.NewTicker(interval)
		defer t.Stop()
		sent := 0
		for sent < total {
			<-t.C
			// Release every event due by now, so a late tick does not lower
			// the offered rate.
			due := min(total, int(time.Since(start)/interval)+1)
			for ; sent < due; sent++ {
				jobs <- sent
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range benchLatencyWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				key := fmt.Sprintf("lat-%d", i%benchKeys)
				t0 := time.Now()
				id, at, err := benchCommitOne(ctx, pool, typ, key, benchData{Seq: int64(i), Writer: w, Key: key, Note: benchNote})
				if err != nil {
					failed.CompareAndSwap(nil, err)
					continue
				}
				commits[w] = append(commits[w], commit{id: id, at: at, duration: at.Sub(t0)})
			}
		}()
	}
	wg.Wait()
	offeredFor := time.Since(start)
	hostBusy := host0.busyPercent(benchReadHostCPU())
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("latency: commit: %v", err)
	}
	select {
	case <-arr.done:
	case <-time.After(benchArrivalTimeout):
		b.Fatalf("latency: only %d of %d events arrived within %s", arr.n.Load(), total, benchArrivalTimeout)
	}
	time.Sleep(500 * time.Millisecond) // so that a late duplicate would show
	ids := make([][]string, benchLatencyWriters)
	for w, cs := range commits {
		for _, c := range cs {
			ids[w] = append(ids[w], c.id)
		}
	}
	arr.verify(b, "latency", ids)
	_ = arr.sub.Unsubscribe()

	var lat, commitLat []time.Duration
	arr.mu.Lock()
	for _, cs := range commits {
		for _, c := range cs {
			lat = append(lat, arr.at[c.id].Sub(c.at))
			commitLat = append(commitLat, c.duration)
		}
	}
	arr.mu.Unlock()
	benchSortDurations(lat)
	benchSortDurations(commitLat)
	achieved := float64(len(lat)) / offeredFor.Seconds()
	b.Logf("latency: %d events offered at %d/s over %d writers, committed at %.0f/s; commit→arrival min %.2f p50 %.2f p90 %.2f p99 %.2f max %.2f ms; commit itself p50 %.2f p99 %.2f ms; machine %.0f%% busy",
		total, benchLatencyRate, benchLatencyWriters, achieved, benchMS(lat[0]), benchMS(benchPercentile(lat, 50)), benchMS(benchPercentile(lat, 90)), benchMS(benchPercentile(lat, 99)), benchMS(lat[len(lat)-1]),
		benchMS(benchPercentile(commitLat, 50)), benchMS(benchPercentile(commitLat, 99)), hostBusy)
	return map[string]any{
		"latency_events":            total,
		"latency_offered_per_s":     benchLatencyRate,
		"latency_committed_per_s":   benchRound(achieved, 0),
		"latency_min_ms":            benchRound(benchMS(lat[0]), 3),
		"latency_p50_ms":            benchRound(benchMS(benchPercentile(lat, 50)), 3),
		"latency_p90_ms":            benchRound(benchMS(benchPercentile(lat, 90)), 3),
		"latency_p99_ms":            benchRound(benchMS(benchPercentile(lat, 99)), 3),
		"latency_max_ms":            benchRound(benchMS(lat[len(lat)-1]), 3),
		"latency_commit_p50_ms":     benchRound(benchMS(benchPercentile(commitLat, 50)), 3),
		"latency_commit_p99_ms":     benchRound(benchMS(benchPercentile(commitLat, 99)), 3),
		"host_cpu_busy_pct_latency": benchRound(hostBusy, 0),
	}
}

// benchHoldRelayLease takes the relay's lease for a holder of its own, for
// an hour, and returns a func that releases it.
func benchHoldRelayLease(tb testing.TB, pool *pgxpool.Pool) func() {
	tb.Helper()
	ctx := context.Background()
	tag, err := pool.Exec(ctx, `INSERT INTO outbox.leases AS l (name, holder, token, acquired_at, renewed_at, expires_at)
		VALUES ($1, 'benchmark', 1, now(), now(), now() + interval '1 hour')
		ON CONFLICT (name) DO UPDATE SET holder = 'benchmark', token = l.token + 1, expires_at = now() + interval '1 hour'
		WHERE l.expires_at < now()`, relay.LeaseName)
	if err != nil || tag.RowsAffected() != 1 {
		tb.Fatalf("take the relay lease: %v (%d rows)", err, tag.RowsAffected())
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if _, err := pool.Exec(ctx, `UPDATE outbox.leases SET expires_at = now() WHERE name = $1 AND holder = 'benchmark'`, relay.LeaseName); err != nil {
				tb.Errorf("release the relay lease: %v", err)
			}
		})
	}
	tb.Cleanup(release)
	return release
}
