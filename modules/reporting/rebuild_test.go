package reporting_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/projection/natslive"
	"github.com/cairn-dev/cairn/testenv"
)

// allAt returns the module's specs with every projection at version v.
func allAt(v int, mutate func(*projection.Spec)) []projection.Spec {
	vs := map[string]int{}
	for _, s := range reporting.Specs(reporting.Options{}) {
		vs[s.Name] = v
	}
	return reporting.Specs(reporting.Options{Versions: vs, Mutate: mutate})
}

// newBinary is a replica running a newer build of the module (every
// projection at version v): its projection runtime, on pools of its own,
// until stop. Only the projections run: the app the test started runs
// everything else, and keeps feeding the versions its own build declares.
type newBinary struct {
	stop func()
	rt   *projection.Runtime
}

func startNewBinary(t testing.TB, a *testenv.App, specs []projection.Spec, holder string, opt projection.Options) *newBinary {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := projection.NewRegistry()
	for _, s := range specs {
		if _, err := reg.Register(s); err != nil {
			t.Fatal(err)
		}
	}
	// As the app does: a connection per version led, and two for the
	// status; the leases on a pool of their own, so a renewal never waits
	// for a connection a build holds.
	cfg, err := pgxpool.ParseConfig(a.DB.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = int32(len(specs) + 2)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := pgxpool.New(ctx, a.DB.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt.Pool, opt.LeasePool, opt.Stream, opt.Lake, opt.Holder = pool, leases, natslive.Stream{JS: a.NATS.JS}, true, holder
	rt := projection.NewRuntime(reg, opt)
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	b := &newBinary{rt: rt}
	var once sync.Once
	b.stop = func() { once.Do(func() { cancel(); <-done; pool.Close(); leases.Close() }) }
	t.Cleanup(b.stop)
	return b
}

// loader asks every report over and over until stop, counting the answers
// that failed (anything but a 200) and those that came back empty once
// the reports had data.
type loader struct {
	ok, failed, empty atomic.Int64
	firstBad          atomic.Value
	stop              func()
}

func startLoader(base string) *loader {
	l := &loader{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	paths := []string{"/reports/orders?limit=50", "/reports/sales/daily", "/reports/stock", "/reports/accounts/daily"}
	for _, p := range paths {
		wg.Go(func() {
			for ctx.Err() == nil {
				var body struct {
					Lines, Days, Items []any
				}
				err := getJSON(base, p, &body)
				switch {
				case err != nil:
					l.failed.Add(1)
					l.firstBad.CompareAndSwap(nil, err.Error())
				case len(body.Lines)+len(body.Days)+len(body.Items) == 0:
					l.empty.Add(1)
					l.firstBad.CompareAndSwap(nil, "GET "+p+": an empty answer")
				default:
					l.ok.Add(1)
				}
			}
		})
	}
	l.stop = func() { cancel(); wg.Wait() }
	return l
}

// waitLive waits until every projection's version v is live and has
// applied every event of its types the lake holds, or fails.
func waitLive(t testing.TB, a *testenv.App, v int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		caughtUp := 0
		for _, s := range reporting.Specs(reporting.Options{}) {
			var ok bool
			err := a.DB.Pool.QueryRow(context.Background(), `
				SELECT p.live_version = v.version AND v.state = 'live' AND coalesce(v.pending, 0) = 0
				       AND v.stream_seq >= (SELECT coalesce(max(stream_seq), 0) FROM lake.events WHERE type = ANY($3))
				FROM projection.versions v JOIN projection.projections p USING (name)
				WHERE v.name = $1 AND v.version = $2`, s.Name, v, s.Events).Scan(&ok)
			if err == nil && ok {
				caughtUp++
			}
		}
		if caughtUp == 4 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d not live and caught up within %s:\n%s", v, within, statusOf(t, a))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statusOf describes every version, one line each.
func statusOf(t testing.TB, a *testenv.App) string {
	st, err := a.Projections().Status(context.Background())
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, p := range st {
		for _, v := range p.Versions {
			e := ""
			if v.Error != nil {
				e = *v.Error
			}
			out += fmt.Sprintf("%s v%d %s lake %d/%d seq %d pending %v error %q verification %s\n", p.Name, v.Version, v.State,
				v.LakePosition, v.BuildTarget, v.StreamSeq, v.Pending, e, v.Verification)
		}
		if p.LastError != "" {
			out += p.Name + " last error: " + p.LastError + "\n"
		}
	}
	return out
}

// A new version is built from the lake beside the live one while events
// keep arriving, and the replica building it is killed twice (mid-build,
// then in the stream phase): the version that goes live says exactly
// what a fold of every event says (none lost, none counted twice), and
// the reports answered, never empty, before, through and after the switch,
// a rollback and a roll forward.
func TestRebuildWithKillsWhileEventsArriveConvergesAndServesThroughout(t *testing.T) {
	ctx := context.Background()
	a := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{reporting.Definition}, RelayDeleteDelay: time.Millisecond})
	before, during := history(21, 2500), history(22, 800)
	if err := publish(ctx, a.DB.Pool, before, 200, 0); err != nil {
		t.Fatal(err)
	}
	waitLive(t, a, 1, 2*time.Minute)
	ld := startLoader(a.URL)

	// The new build, and the events that keep arriving meanwhile.
	writerDone := make(chan error, 1)
	go func() { writerDone <- publish(ctx, a.DB.Pool, during, 40, 15*time.Millisecond) }()
	opt := projection.Options{ChunkPositions: 250, BatchEvents: 200}
	nb := startNewBinary(t, a, allAt(2, nil), "new-1", opt)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if _, pos, target := versionState(t, a.DB.Pool, "reporting_order_lines", 2); target > 0 && pos > target/3 {
			t.Logf("killed mid-build at lake position %d of %d", pos, target)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the build never got a third of the way")
		}
	}
	nb.stop()
	nb = startNewBinary(t, a, allAt(2, nil), "new-2", opt)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if st, _, _ := versionState(t, a.DB.Pool, "reporting_order_lines", 2); st != "building" && st != "" {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			st, _, _ = versionState(t, a.DB.Pool, "reporting_order_lines", 2)
			t.Logf("killed again in state %s", st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the build never finished")
		}
	}
	nb.stop()
	startNewBinary(t, a, allAt(2, nil), "new-3", opt)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	a.Drain()
	waitLive(t, a, 2, 2*time.Minute)

	want := fold(append(append([]projection.Event{}, before...), during...))
	check := func(when string, version int) {
		t.Helper()
		got, versions, err := readReports(a.URL)
		if err != nil {
			t.Fatal(err)
		}
		for r, v := range versions {
			if v != version {
				t.Errorf("%s: the %s report answered from version %d, want %d", when, r, v, version)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the reports differ from the fold of the events:\n got %s\nwant %s", when, describe(got), describe(want))
		}
	}
	check("after the switch", 2)

	// Rollback and roll forward, under the same load.
	for _, back := range []int{1, 2} {
		for _, s := range reporting.Specs(reporting.Options{}) {
			if _, _, err := projection.Rollback(ctx, a.DB.Pool, s.Name); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		check(fmt.Sprintf("after switching to version %d", back), back)
	}
	ld.stop()
	t.Logf("the load: %d answers, %d failed, %d empty", ld.ok.Load(), ld.failed.Load(), ld.empty.Load())
	if ld.failed.Load() > 0 || ld.empty.Load() > 0 || ld.ok.Load() == 0 {
		t.Errorf("the reports did not answer throughout: %d failed, %d empty of %d; first: %v",
			ld.failed.Load(), ld.empty.Load(), ld.ok.Load()+ld.failed.Load()+ld.empty.Load(), ld.firstBad.Load())
	}
}

func describe(f folded) string {
	return fmt.Sprintf("%+v", f)
}
