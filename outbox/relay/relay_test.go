package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

var errRollback = errors.New("roll back on purpose")

// Committed events arrive exactly once; events of rolled-back transactions
// never do; rows are cleaned up afterwards.
func TestCommittedOnceRolledBackNever(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	startRelay(t, db.Pool, nt.JS, relay.Options{BatchSize: 50})
	ctx := context.Background()

	const writers, perWriter = 8, 60
	var mu sync.Mutex
	committed := map[string]bool{}
	rolledBack := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				var got []outbox.Appended
				err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					a, err := outbox.Append(ctx, tx,
						outbox.Event{Type: "test.thing_happened.v1", Key: key(w), Data: testData{N: i}},
						outbox.Event{Type: "test.secret_made.v1", Key: key(w), Data: testData{N: i}})
					if err != nil {
						return err
					}
					got = a
					if i%3 == 0 {
						return errRollback
					}
					return nil
				})
				mu.Lock()
				for _, a := range got {
					if err == nil {
						committed[a.ID] = true
					} else if errors.Is(err, errRollback) {
						rolledBack[a.ID] = true
					} else {
						t.Errorf("append: %v", err)
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()

	public := collect(t, nt.JS, outbox.PublicStream, len(committed)/2, 20*time.Second)
	internal := collect(t, nt.JS, outbox.InternalStream, len(committed)/2, 20*time.Second)
	seen := ids(append(public, internal...))
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
		if rolledBack[id] {
			t.Errorf("event %s of a rolled-back transaction was published", id)
		}
		if !committed[id] {
			t.Errorf("unknown event %s published", id)
		}
	}
	for id := range committed {
		if seen[id] == 0 {
			t.Errorf("committed event %s never arrived", id)
		}
	}
	for _, r := range public {
		if r.Subject != "events.test.thing_happened.v1" || r.Event.Source != "/cairn/test" || r.Event.SpecVersion != "1.0" {
			t.Fatalf("bad public message: %+v", r)
		}
	}
	for _, r := range internal {
		if r.Subject != "internal.test.secret_made.v1" {
			t.Fatalf("bad internal subject %q", r.Subject)
		}
	}
	t.Logf("committed %d, rolled back %d, arrived %d", len(committed), len(rolledBack), len(seen))
	waitFor(t, 10*time.Second, "published rows to be deleted", func() bool { return outboxRows(t, db.Pool) == 0 })
}

// A transaction that got its id first but commits last is not skipped.
func TestLateCommitIsNotSkipped(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	startRelay(t, db.Pool, nt.JS, relay.Options{})
	ctx := context.Background()

	slow, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback(ctx)
	late, err := outbox.Append(ctx, slow, outbox.Event{Type: "test.late.v1", Key: "a", Data: testData{N: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var early []string
	for i := 0; i < 5; i++ {
		id, err := appendOne(ctx, db.Pool, "test.early.v1", "b", testData{N: i})
		if err != nil {
			t.Fatal(err)
		}
		early = append(early, id)
	}
	time.Sleep(300 * time.Millisecond) // the relay runs meanwhile
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := ids(collect(t, nt.JS, outbox.PublicStream, 6, 10*time.Second))
	for _, id := range append(early, late[0].ID) {
		if got[id] != 1 {
			t.Errorf("event %s arrived %d times, want 1", id, got[id])
		}
	}
}

// Writers of one key serialised by a row lock publish in commit order, even
// when a writer took its transaction id before the one that beat it.
func TestSameKeyInCommitOrder(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE counters (k text PRIMARY KEY, v int NOT NULL); CREATE TABLE noise (n int);
		INSERT INTO counters SELECT 'k' || lpad(g::text, 3, '0'), 0 FROM generate_series(0, 3) g`); err != nil {
		t.Fatal(err)
	}
	startRelay(t, db.Pool, nt.JS, relay.Options{BatchSize: 20})
	const writers, perWriter, keys = 12, 40, 4
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				k := key((w + i) % keys)
				err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					// Take a transaction id before queueing on the row lock.
					if _, err := tx.Exec(ctx, `INSERT INTO noise VALUES (1)`); err != nil {
						return err
					}
					var v int
					if err := tx.QueryRow(ctx, `UPDATE counters SET v = v + 1 WHERE k = $1 RETURNING v`, k).Scan(&v); err != nil {
						return err
					}
					_, err := outbox.Append(ctx, tx, outbox.Event{Type: "test.counted.v1", Key: k, Data: testData{Version: v}})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	got := collect(t, nt.JS, outbox.PublicStream, writers*perWriter, 30*time.Second)
	if len(got) != writers*perWriter {
		t.Fatalf("got %d events, want %d", len(got), writers*perWriter)
	}
	last := map[string]int{}
	for _, r := range got {
		var d testData
		if err := jsonUnmarshal(r.Event.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Version != last[r.Event.Subject]+1 {
			t.Fatalf("key %s: version %d after %d", r.Event.Subject, d.Version, last[r.Event.Subject])
		}
		last[r.Event.Subject] = d.Version
	}
}

// With two relays on one database exactly one leads; when it stops the other
// takes over and nothing is lost or duplicated.
func TestStandbyTakesOver(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	a, stopA := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a"})
	waitFor(t, 5*time.Second, "a to lead", func() bool { return a.State() == relay.Leader })
	b, _ := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "b"})
	waitFor(t, 5*time.Second, "b to stand by", func() bool { return b.State() == relay.Standby })

	var want []string
	for i := 0; i < 100; i++ {
		id, err := appendOne(ctx, db.Pool, "test.tick.v1", key(i%7), testData{N: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	stopA()
	start := time.Now()
	waitFor(t, 5*time.Second, "b to lead", func() bool { return b.State() == relay.Leader })
	t.Logf("takeover in %s", time.Since(start).Round(time.Millisecond))
	for i := 100; i < 200; i++ {
		id, err := appendOne(ctx, db.Pool, "test.tick.v1", key(i%7), testData{N: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	got := ids(collect(t, nt.JS, outbox.PublicStream, len(want), 20*time.Second))
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("event %s arrived %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct events arrived, want %d", len(got), len(want))
	}
}

// A new leader does not republish what the old one sent after it last
// persisted its cursor, even when that was longer ago than JetStream's
// duplicate window: it finds those events in the streams and skips them.
func TestNewLeaderSkipsWhatIsAlreadyInTheStream(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	for _, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		s, err := nt.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.Duplicates = 100 * time.Millisecond
		if _, err := nt.JS.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3000
	var want []string
	for i := 0; i < n; i += 100 {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			evs := make([]outbox.Event, 100)
			for j := range evs {
				evs[j] = outbox.Event{Type: "test.tick.v1", Key: key((i + j) % 11), Data: testData{N: i + j}}
			}
			a, err := outbox.Append(ctx, tx, evs...)
			for _, x := range a {
				want = append(want, x.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := nt.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	_, stopA := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a", BatchSize: 100})
	waitFor(t, 20*time.Second, "a third published", func() bool { return msgs() >= n/3 })
	stopA() // stops between batches: the last acked ones are not in its persisted cursor
	var persisted int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events e, outbox.relay_cursor c WHERE (e.txid, e.seq) <= (c.txid, c.seq)`).Scan(&persisted); err != nil {
		t.Fatal(err)
	}
	published := msgs()
	t.Logf("a stopped with %d published, its cursor covering %d rows still in the table", published, persisted)
	time.Sleep(500 * time.Millisecond) // past the duplicate window
	startRelay(t, db.Pool, nt.JS, relay.Options{Name: "b", BatchSize: 100})
	got := ids(collect(t, nt.JS, outbox.PublicStream, n, 20*time.Second))
	for _, id := range want {
		if got[id] != 1 {
			t.Fatalf("event %s is in the stream %d times", id, got[id])
		}
	}
	if len(got) != n || msgs() != n {
		t.Fatalf("stream holds %d messages (%d distinct), want %d", msgs(), len(got), n)
	}
}

// The relay wakes on commit: with the fallback poll set to an hour, every
// event still arrives, each after the relay had gone to sleep.
func TestWakesOnCommitNotOnPoll(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	r, _ := startRelay(t, db.Pool, nt.JS, relay.Options{PollInterval: time.Hour, DeleteDelay: time.Hour})
	waitFor(t, 5*time.Second, "leader", func() bool { return r.State() == relay.Leader })
	for i := 1; i <= 5; i++ {
		<-r.Drained() // asleep, waiting for a notification
		if _, err := appendOne(ctx, db.Pool, "test.woke.v1", "k", testData{N: i}); err != nil {
			t.Fatal(err)
		}
		if got := collect(t, nt.JS, outbox.PublicStream, i, 10*time.Second); len(got) != i {
			t.Fatalf("after commit %d the stream holds %d events: the relay did not wake", i, len(got))
		}
	}
}

// The backlog metric counts what is committed and not yet published, and
// the age of the oldest such event; it falls to zero once the relay runs.
func TestMetricsReportBacklog(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	r := relay.New(db.Pool, nt.JS, relay.Options{Logger: slog.New(slog.DiscardHandler)})
	for i := 0; i < 25; i++ {
		if _, err := appendOne(ctx, db.Pool, "test.waited.v1", key(i%3), testData{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	m, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != relay.Stopped || m.Backlog != 25 || m.OldestAgeSeconds <= 0 || m.Published != 0 {
		t.Fatalf("before the relay runs: %+v, want stopped with a backlog of 25", m)
	}
	ctxRun, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctxRun) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 10*time.Second, "an empty backlog", func() bool {
		m, err = r.Metrics(ctx)
		return err == nil && m.Backlog == 0 && m.Published == 25
	})
	if m.State != relay.Leader || m.OldestAgeSeconds != 0 || m.PublishErrors != 0 {
		t.Fatalf("after draining: %+v", m)
	}
}

// Under steady load the leader keeps polling instead of going idle between
// commits: idling costs two flag updates and makes every writer NOTIFY. The
// same load with IdleAfter near zero is the control: how often the leader
// idles without the delay. The comparison, not a fixed bound, keeps the test
// honest on a busy machine, where any gap over 5 ms may still idle it.
func TestStaysAwakeUnderSteadyLoad(t *testing.T) {
	withDelay, commits := idlesUnderLoad(t, 0)
	control, controlCommits := idlesUnderLoad(t, time.Nanosecond)
	t.Logf("default: %d idles in %d commits; without the delay: %d idles in %d commits", withDelay, commits, control, controlCommits)
	if control < 10 {
		t.Fatalf("without the delay the leader idled only %d times in %d commits: the load is too thin to show anything", control, controlCommits)
	}
	// Per commit, the delay must remove at least three idles in four.
	if float64(withDelay)/float64(commits) > float64(control)/float64(controlCommits)/4 {
		t.Fatalf("the leader idled %d times in %d commits with the delay, %d in %d without: the delay does not keep it awake",
			withDelay, commits, control, controlCommits)
	}
}

// idlesUnderLoad runs a relay with idleAfter while four writers commit back
// to back for a second (a commit every millisecond or two), checks that
// every event arrived, and returns how often the leader went idle.
func idlesUnderLoad(t *testing.T, idleAfter time.Duration) (idles uint64, commits int) {
	t.Helper()
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	r, stop := startRelay(t, db.Pool, nt.JS, relay.Options{IdleAfter: idleAfter})
	defer stop()
	waitFor(t, 5*time.Second, "leader", func() bool { return r.State() == relay.Leader })
	<-r.Drained()
	before, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var n atomic.Int64
	end := time.Now().Add(time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if _, err := appendOne(ctx, db.Pool, "test.steady.v1", key(w), testData{N: int(n.Add(1))}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	after, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, nt.JS, outbox.PublicStream, int(n.Load()), 10*time.Second); len(got) != int(n.Load()) {
		t.Fatalf("%d of %d events arrived", len(got), n.Load())
	}
	return after.Idles - before.Idles, int(n.Load())
}

// A cursor whose recorded stream sequence is ahead of what it covers (only
// a bug can write one) makes the relay publish again events the stream
// already holds. JetStream acks them as duplicates stored below the chain;
// the relay then reconciles from there, and carries on without a duplicate
// instead of failing the same way for ever.
func TestRecoversFromARecordedSequenceAhead(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	var want []string
	for i := range 300 {
		id, err := appendOne(ctx, db.Pool, "test.tick.v1", key(i%7), testData{N: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	a, stopA := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a", DeleteDelay: time.Hour})
	waitFor(t, 10*time.Second, "a to publish everything", func() bool {
		m, err := a.Metrics(ctx)
		return err == nil && m.Backlog == 0 && m.Published == 300
	})
	stopA()
	// Put the cursor back to the start but leave the stream sequences it
	// records at the end: they now claim more than the cursor covers.
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox.relay_cursor SET txid = 0, seq = 0`); err != nil {
		t.Fatal(err)
	}
	b, _ := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "b"})
	waitFor(t, 20*time.Second, "b to work through the backlog", func() bool {
		m, err := b.Metrics(ctx)
		return err == nil && m.Backlog == 0
	})
	got := ids(collect(t, nt.JS, outbox.PublicStream, len(want), 10*time.Second))
	for _, id := range want {
		if got[id] != 1 {
			t.Fatalf("event %s is in the stream %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct events in the stream, want %d", len(got), len(want))
	}
	if m, _ := b.Metrics(ctx); m.PublishErrors == 0 {
		t.Fatal("b never met the events already published: the test proves nothing")
	}
}
