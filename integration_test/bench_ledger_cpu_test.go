package integration_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ledgerPostmasterPid is the server's postmaster when it runs on this
// machine (the parent of our backend), else 0.
func ledgerPostmasterPid(tb testing.TB, pool *pgxpool.Pool) int {
	tb.Helper()
	var backend int
	if err := pool.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		tb.Fatal(err)
	}
	f, err := ledgerProcStat(backend)
	if err != nil || !ledgerIsPostgres(backend) {
		return 0
	}
	pm, err := strconv.Atoi(f[1])
	if err != nil || !ledgerIsPostgres(pm) {
		return 0
	}
	return pm
}

func ledgerIsPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(b)) == "postgres"
}

// ledgerProcStat returns the fields of /proc/pid/stat after the command
// name: [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
func ledgerProcStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f, nil
}

func ledgerTicks(f []string, idx ...int) time.Duration {
	var t int64
	for _, i := range idx {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		t += v
	}
	return time.Duration(t) * 10 * time.Millisecond // USER_HZ = 100
}

// ledgerPostgresCPU is the CPU time of the postmaster and every process it
// started, living or reaped.
func ledgerPostgresCPU(pm int) time.Duration {
	if pm == 0 {
		return 0
	}
	f, err := ledgerProcStat(pm)
	if err != nil {
		return 0
	}
	total := ledgerTicks(f, 11, 12, 13, 14)
	ents, _ := os.ReadDir("/proc")
	want := strconv.Itoa(pm)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := ledgerProcStat(pid)
		if err == nil && f[1] == want {
			total += ledgerTicks(f, 11, 12)
		}
	}
	return total
}

// ledgerMachineCPU is the busy CPU time of the whole machine (all cores).
func ledgerMachineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for i := 1; i < len(f) && i <= 8; i++ {
		if i == 4 || i == 5 { // idle, iowait
			continue
		}
		v, _ := strconv.ParseInt(f[i], 10, 64)
		busy += v
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// ledgerCPU is CPU time used so far by each party.
type ledgerCPU struct {
	cairn, postgres, self, machine time.Duration
}

func ledgerSampleCPU(env *ledgerEnv) ledgerCPU {
	var c ledgerCPU
	if env.cairnPid != 0 {
		c.cairn, _ = benchProcCPU(env.cairnPid)
	}
	c.postgres = ledgerPostgresCPU(env.pgPid)
	c.self, _ = benchProcCPU(os.Getpid())
	c.machine = ledgerMachineCPU()
	return c
}

// cores is the CPU each party used between c0 and c, in cores.
func (c ledgerCPU) cores(c0 ledgerCPU, window time.Duration) map[string]float64 {
	s := window.Seconds()
	return map[string]float64{
		"cpu_cairn":    benchRound((c.cairn-c0.cairn).Seconds()/s, 2),
		"cpu_postgres": benchRound((c.postgres-c0.postgres).Seconds()/s, 2),
		"cpu_bench":    benchRound((c.self-c0.self).Seconds()/s, 2),
		"cpu_machine":  benchRound((c.machine-c0.machine).Seconds()/s, 2),
	}
}

func ledgerWALLSN(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var lsn string
	if err := pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		tb.Fatal(err)
	}
	return lsn
}

func ledgerWALSince(tb testing.TB, pool *pgxpool.Pool, lsn string) int64 {
	tb.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint`, lsn).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
