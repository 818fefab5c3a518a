package integration_test

import (
	"bytes"
	"context"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ledgerPgbenchSchema creates the ceiling's tables, shaped like
// ledger.accounts, ledger.entries and outbox.events, and the accounts with
// ids pgbench can compute from a number.
func ledgerPgbenchSchema(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	_, err := pool.Exec(context.Background(), `
CREATE TABLE accounts (
    id         uuid        PRIMARY KEY,
    owner      text        NOT NULL,
    currency   char(3)     NOT NULL,
    balance    bigint      NOT NULL CHECK (balance >= 0),
    version    bigint      NOT NULL,
    opened_at  timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE entries (
    account_id    uuid        NOT NULL,
    version       bigint      NOT NULL CHECK (version >= 0),
    type          text        NOT NULL CHECK (type IN ('opened', 'deposited', 'withdrawn')),
    amount        bigint      NOT NULL CHECK (amount >= 0),
    balance_after bigint      NOT NULL CHECK (balance_after >= 0),
    occurred_at   timestamptz NOT NULL,
    event_id      uuid        NOT NULL,
    PRIMARY KEY (account_id, version)
);
CREATE TABLE outbox (
    txid       bigint      NOT NULL,
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    event_id   uuid        NOT NULL,
    key        text        NOT NULL,
    subject    text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (txid, seq)
);
CREATE INDEX outbox_key_txid ON outbox (key, txid);
INSERT INTO accounts (id, owner, currency, balance, version, opened_at, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, 'bench ' || n, 'EUR', 0, 0, now(), now()
FROM generate_series(0, `+strconv.Itoa(ledgerBenchAccounts-1)+`) AS n;
INSERT INTO entries (account_id, version, type, amount, balance_after, occurred_at, event_id)
SELECT id, 0, 'opened', 0, 0, opened_at, gen_random_uuid() FROM accounts;
ANALYZE;`)
	if err != nil {
		tb.Fatalf("pgbench schema: %v", err)
	}
}

// ledgerPgbench is one pgbench run.
type ledgerPgbench struct {
	tps    float64
	txs    int64
	latAvg float64 // ms, as pgbench reports it
	cpu    map[string]float64
	wal    float64 // bytes per transaction
}

func (r ledgerPgbench) metrics(suffix string) map[string]float64 {
	m := map[string]float64{
		"tps" + suffix:              benchRound(r.tps, 0),
		"latency_avg_ms" + suffix:   benchRound(r.latAvg, 2),
		"transactions" + suffix:     float64(r.txs),
		"wal_bytes_per_tx" + suffix: benchRound(r.wal, 0),
	}
	for k, v := range r.cpu {
		m[k+suffix] = v
	}
	return m
}

// ledgerWaitPgbenchGone waits until no pgbench connection is left.
func ledgerWaitPgbenchGone(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'`).Scan(&n); err != nil {
			tb.Fatal(err)
		}
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
			return
		}
	}
	tb.Logf("pgbench's connections were still open 10 s after it exited; its PostgreSQL CPU may be undercounted")
}

var (
	ledgerTPSLine     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)`)
	ledgerTxsLine     = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	ledgerFailedLine  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	ledgerLatencyLine = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// ledgerRunPgbench runs the deposit script with conns clients for dur and
// returns its throughput; env (nil for a warm-up) is for CPU accounting.
func ledgerRunPgbench(tb testing.TB, bin, script, dbURL, payload string, conns int, dur time.Duration, env *ledgerEnv) ledgerPgbench {
	tb.Helper()
	secs := max(1, int(math.Ceil(dur.Seconds())))
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(conns), "-j", strconv.Itoa(min(ledgerBenchPgbenchThreads, conns)),
		"-T", strconv.Itoa(secs), "-D", "nconn=" + strconv.Itoa(conns), "-D", "payload=" + payload, "-f", script, dbURL}
	var r ledgerPgbench
	var cpu0 ledgerCPU
	var lsn string
	if env != nil {
		ledgerQuiesce(tb, env)
		lsn = ledgerWALLSN(tb, env.pool)
		cpu0 = ledgerSampleCPU(env)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		tb.Fatalf("pgbench -c %d: %v\n%s", conns, err, out.String())
	}
	text := out.String()
	m := ledgerTPSLine.FindStringSubmatch(text)
	if m == nil && env == nil {
		tb.Logf("pgbench warm-up, %d clients: no transaction completed", conns)
		return r
	}
	if m == nil {
		tb.Fatalf("pgbench -c %d: no tps in its output:\n%s", conns, text)
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	if m := ledgerTxsLine.FindStringSubmatch(text); m != nil {
		r.txs, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := ledgerFailedLine.FindStringSubmatch(text); m != nil && m[1] != "0" {
		tb.Fatalf("pgbench -c %d: %s transactions failed:\n%s", conns, m[1], text)
	}
	if m := ledgerLatencyLine.FindStringSubmatch(text); m != nil {
		r.latAvg, _ = strconv.ParseFloat(m[1], 64)
	}
	if env == nil {
		tb.Logf("pgbench warm-up, %d clients: %.0f tps", conns, r.tps)
		return r
	}
	// The backends pgbench used exit after it does; their CPU counts once
	// the postmaster has reaped them.
	ledgerWaitPgbenchGone(tb, env.pool)
	cpu1 := ledgerSampleCPU(env)
	window := time.Since(start)
	r.wal = float64(ledgerWALSince(tb, env.pool, lsn)) / float64(max(r.txs, 1))
	r.cpu = cpu1.cores(cpu0, window)
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.cpu["cpu_pgbench"] = benchRound(client.Seconds()/window.Seconds(), 2)
	delete(r.cpu, "cpu_bench")
	tb.Logf("pgbench: %d clients, %d transactions in %ds: %.0f tps, latency average %.2f ms; CPU cores: postgres %.2f pgbench %.2f cairn (idle) %.2f machine %.2f; WAL %.0f bytes/transaction",
		conns, r.txs, secs, r.tps, r.latAvg, r.cpu["cpu_postgres"], r.cpu["cpu_pgbench"], r.cpu["cpu_cairn"], r.cpu["cpu_machine"], r.wal)
	return r
}
