package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/testenv"
)

// BenchmarkMetrics measures GET /metrics with 1,000,000 committed events
// the relay has not published (a transaction left open holds it back) and
// 100,000 dead letters: 300 scrapes, one every 50 ms, so the figures that
// cost a query are refreshed about fifteen times meanwhile. Target: p99
// under 50 ms. It also reports how long one refresh of those figures took
// (the background count) and, for comparison, one count(*) of the backlog.
func BenchmarkMetrics(b *testing.B) {
	const backlog, dead, scrapes = 1_000_000, 100_000, 300
	a := testenv.StartApp(b, testenv.AppOptions{})
	ctx := context.Background()
	pool := a.DB.Pool

	blocker, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = blocker.Rollback(ctx) }()
	if _, err := blocker.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := pool.Exec(ctx, `INSERT INTO outbox.events (txid, event_id, key, subject, payload)
		SELECT pg_current_xact_id()::text::bigint, gen_random_uuid(), 'k' || (i % 1000), 'events.bench.filled.v1', '\x7b7d'::bytea
		FROM generate_series(1, $1) i`, backlog); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error, failed_at)
		SELECT gen_random_uuid(), 'mail_activation_email', gen_random_uuid(), 'users.activation_requested.v1',
		       'internal.users.activation_requested.v1', 'k' || i, '\x7b7d'::bytea, 5, 'smtp said no', now() - make_interval(secs => i)
		FROM generate_series(1, $1) i`, dead); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE outbox.events; ANALYZE inbox.dead_letters`); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled in %s", time.Since(start).Round(time.Millisecond))

	countStart := time.Now()
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events`).Scan(&n); err != nil || n < backlog {
		b.Fatalf("count: %d, %v", n, err)
	}
	countTook := time.Since(countStart)

	get := func() (time.Duration, string) {
		t0 := time.Now()
		resp, err := http.Get(a.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("/metrics: %d %v", resp.StatusCode, err)
		}
		return time.Since(t0), string(body)
	}
	// The first scrape starts the first count; wait until a sample has it.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, body := get()
		if benchSeries(body, "cairn_outbox_backlog_events") >= backlog && benchSeries(body, `cairn_consumer_dead_letters{consumer="mail_activation_email"}`) == dead {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("/metrics never showed the backlog and the dead letters")
		}
		time.Sleep(200 * time.Millisecond)
	}

	lat := make([]time.Duration, 0, scrapes)
	var sampleTook float64
	for range scrapes {
		d, body := get()
		lat = append(lat, d)
		sampleTook = max(sampleTook, benchSeries(body, "cairn_metrics_sample_duration_seconds"))
		time.Sleep(50 * time.Millisecond)
	}
	benchSortDurations(lat)
	p50, p99, top := benchPercentile(lat, 50), benchPercentile(lat, 99), benchPercentile(lat, 100)
	b.ReportMetric(benchMS(p99), "scrape_p99_ms")
	b.ReportMetric(0, "ns/op")
	sum := map[string]any{
		"metrics_scrape_p50_ms":          benchRound(benchMS(p50), 2),
		"metrics_scrape_p99_ms":          benchRound(benchMS(p99), 2),
		"metrics_scrape_max_ms":          benchRound(benchMS(top), 2),
		"metrics_scrapes":                scrapes,
		"metrics_backlog_events":         backlog,
		"metrics_dead_letters":           dead,
		"metrics_sample_refresh_max_ms":  benchRound(sampleTook*1000, 2),
		"metrics_backlog_count_query_ms": benchRound(benchMS(countTook), 2),
	}
	rest, err := json.Marshal(sum)
	if err != nil {
		b.Fatal(err)
	}
	fmt.Print("\n" + `{"bench":"metrics",` + string(rest[1:]) + "\n")
}

// benchSeries returns the value of one series in a /metrics answer, -1 if
// it is not there.
func benchSeries(body, series string) float64 {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
