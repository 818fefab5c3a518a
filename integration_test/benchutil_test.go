package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/testenv"
)

// benchNATS is the NATS server a benchmark publishes through: the harness's
// embedded one, or the server named by CAIRN_NATS_URL.
type benchNATS struct {
	URL      string // with credentials, for the cairn process and our own connections
	JS       jetstream.JetStream
	Replicas int
	Embedded bool // the harness's server, in this process
}

func benchMustNATS(tb testing.TB) *benchNATS {
	tb.Helper()
	replicas := 1
	if s := os.Getenv("CAIRN_NATS_REPLICAS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("CAIRN_NATS_REPLICAS=%q: %v", s, err)
		}
		replicas = n
	}
	if url := os.Getenv("CAIRN_NATS_URL"); url != "" {
		nc, err := nats.Connect(url, nats.Name("cairn-bench"))
		if err != nil {
			tb.Fatalf("connect to CAIRN_NATS_URL: %v", err)
		}
		tb.Cleanup(nc.Close)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
		if err != nil {
			tb.Fatalf("jetstream: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := broker.EnsureStreams(ctx, js, replicas); err != nil {
			tb.Fatalf("streams: %v", err)
		}
		return &benchNATS{URL: url, JS: js, Replicas: replicas}
	}
	nt := testenv.MustNATS(tb)
	return &benchNATS{URL: nt.Server.URLWithCredentials(), JS: nt.JS, Replicas: 1, Embedded: true}
}

// benchPool opens a pool large enough for the benchmark's writers.
func benchPool(tb testing.TB, url string, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		tb.Fatalf("pool config: %v", err)
	}
	cfg.MaxConns = maxConns
	cfg.MinConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("pool: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// benchRequireDurable fails unless every commit waits for an fsynced WAL
// flush; a benchmark without it measures nothing a user would get.
func benchRequireDurable(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	for _, setting := range []string{"fsync", "synchronous_commit"} {
		var v string
		if err := pool.QueryRow(context.Background(), "SHOW "+setting).Scan(&v); err != nil {
			tb.Fatalf("SHOW %s: %v", setting, err)
		}
		if v != "on" {
			tb.Fatalf("PostgreSQL has %s=%s; this benchmark requires durable commits (on)", setting, v)
		}
	}
}

// benchData is the event payload: about 200 bytes of JSON.
type benchData struct {
	Seq    int64  `json:"seq"`
	Writer int    `json:"writer"`
	Key    string `json:"key"`
	Note   string `json:"note"`
}

var benchNote = strings.Repeat("lorem ipsum dolor sit amet ", 6)[:150]

// benchCommitOne commits one event in its own transaction and returns its id and
// the moment Commit returned.
func benchCommitOne(ctx context.Context, pool *pgxpool.Pool, typ, key string, data benchData) (string, time.Time, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	a, err := outbox.Append(ctx, tx, outbox.Event{Type: typ, Key: key, Data: data})
	if err != nil {
		return "", time.Time{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", time.Time{}, err
	}
	return a[0].ID, time.Now(), nil
}

// benchArrivals records, per event id, when a core NATS subscriber received it.
type benchArrivals struct {
	mu     sync.Mutex
	at     map[string]time.Time
	last   time.Time
	dups   int
	bad    int
	n      atomic.Int64 // distinct ids
	target int64
	done   chan struct{}
	sub    *nats.Subscription
}

// benchSubscribe subscribes nc to subject; done closes when target
// distinct ids have arrived (never if target is 0).
func benchSubscribe(tb testing.TB, nc *nats.Conn, subject string, target int64) *benchArrivals {
	tb.Helper()
	a := &benchArrivals{at: make(map[string]time.Time, max(target, 1024)), target: target, done: make(chan struct{})}
	sub, err := nc.Subscribe(subject, a.handle)
	if err != nil {
		tb.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		tb.Fatalf("pending limits: %v", err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatalf("flush subscription: %v", err)
	}
	a.sub = sub
	return a
}

var benchIDField = []byte(`"id":"`)

func (a *benchArrivals) handle(m *nats.Msg) {
	now := time.Now()
	id, ok := benchEventID(m.Data)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !ok {
		a.bad++
		return
	}
	if _, seen := a.at[id]; seen {
		a.dups++
		return
	}
	a.at[id] = now
	a.last = now
	if n := a.n.Add(1); n == a.target {
		close(a.done)
	}
}

// benchEventID reads the id of a CloudEvent; json.Marshal writes
// specversion then id, so the first "id" field is the event's.
func benchEventID(data []byte) (string, bool) {
	i := bytes.Index(data, benchIDField)
	if i >= 0 && len(data) >= i+len(benchIDField)+36 && data[i+len(benchIDField)+36] == '"' {
		return string(data[i+len(benchIDField) : i+len(benchIDField)+36]), true
	}
	var ce outbox.CloudEvent
	if err := json.Unmarshal(data, &ce); err != nil || ce.ID == "" {
		return "", false
	}
	return ce.ID, true
}

// verify fails unless exactly the ids in want arrived, each once, and the
// subscriber dropped nothing.
func (a *benchArrivals) verify(tb testing.TB, phase string, want [][]string) {
	tb.Helper()
	dropped, err := a.sub.Dropped()
	if err != nil {
		tb.Fatalf("%s: subscriber: %v", phase, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var total, missing int
	for _, ids := range want {
		for _, id := range ids {
			total++
			if _, ok := a.at[id]; !ok {
				missing++
			}
		}
	}
	extra := len(a.at) - (total - missing)
	if missing > 0 || extra > 0 || a.dups > 0 || a.bad > 0 || dropped > 0 {
		tb.Fatalf("%s: committed %d events; %d never arrived, %d unexpected ids arrived, %d duplicate deliveries, %d unreadable messages, %d dropped by the subscriber",
			phase, total, missing, extra, a.dups, a.bad, dropped)
	}
}

func (a *benchArrivals) lastArrival() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

// benchStreamCount is how many messages stream holds on subject.
func benchStreamCount(ctx context.Context, js jetstream.JetStream, stream, subject string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subject], nil
}

// benchProcCPU is the user+system CPU time a process has used so far.
func benchProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name start at field 3 (state);
	// utime and stime are fields 14 and 15, in clock ticks (USER_HZ = 100 on
	// Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// benchProcRSS is a process's resident set size in bytes.
func benchProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// benchRSSSampler records a process's peak RSS until stopped.
type benchRSSSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func benchSampleRSS(pid int, every time.Duration) *benchRSSSampler {
	s := &benchRSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, err := benchProcRSS(pid); err == nil && rss > s.peak.Load() {
				s.peak.Store(rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *benchRSSSampler) Stop() int64 { close(s.stop); <-s.done; return s.peak.Load() }

// benchLogTime reads the "time" field of a JSON log line.
func benchLogTime(tb testing.TB, line string) time.Time {
	tb.Helper()
	var l struct {
		Time time.Time `json:"time"`
	}
	if err := json.Unmarshal([]byte(line), &l); err != nil || l.Time.IsZero() {
		tb.Fatalf("no time in log line %q: %v", line, err)
	}
	return l.Time
}

// benchPercentile is the nearest-rank benchPercentile of sorted values.
func benchPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func benchSortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func benchMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func benchRound(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func benchEnvSeconds(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		tb.Fatalf("%s=%q: want a positive number of seconds", name, s)
	}
	return time.Duration(v * float64(time.Second))
}

// benchHostCPU is the machine's cumulative CPU time from /proc/stat, in
// clock ticks: busy (everything but idle and iowait) and total.
type benchHostCPU struct{ busy, total uint64 }

func benchReadHostCPU() benchHostCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return benchHostCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var c benchHostCPU
	for i, s := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseUint(s, 10, 64)
		c.total += v
		if i != 3 && i != 4 {
			c.busy += v
		}
	}
	return c
}

// busyPercent is how busy the whole machine was between c and later.
func (c benchHostCPU) busyPercent(later benchHostCPU) float64 {
	if later.total <= c.total {
		return 0
	}
	return 100 * float64(later.busy-c.busy) / float64(later.total-c.total)
}

// benchSelfCPU is the CPU time this process (writers, subscriber and, unless
// CAIRN_NATS_URL is set, the NATS server) has used so far.
func benchSelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
