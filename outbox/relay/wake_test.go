package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

// A writer that read the idle flag just before the leader set it sends no
// NOTIFY; the leader must not go to sleep before that writer has finished.
// The test makes the race certain: it holds the lock on outbox.relay so the
// leader's flag update waits, with its transaction id taken; a writer then
// takes a later id and reads the flag (still off) before the update can
// commit, and commits only after the leader has had time to go to sleep.
// With the fallback poll at 30 s, the event must still arrive well before
// it. It fails without the sleep check (the leader sleeps at once), and
// with a check that waits on pg_snapshot_xmax, which is only one past the
// latest *completed* id and so below this writer's.
func TestWriterThatMissedTheIdleFlagIsNotLeftToThePoll(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	r, _ := startRelay(t, db.Pool, nt.JS, relay.Options{PollInterval: 30 * time.Second, IdleAfter: time.Second, DeleteDelay: time.Hour})
	waitFor(t, 5*time.Second, "leader", func() bool { return r.State() == relay.Leader })
	<-r.Drained()
	if _, err := appendOne(ctx, db.Pool, "test.first.v1", "a", testData{N: 1}); err != nil {
		t.Fatal(err)
	}
	collect(t, nt.JS, outbox.PublicStream, 1, 5*time.Second)
	// The leader is awake and will set the flag after IdleAfter: make it
	// wait on the row lock.
	locker, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx)
	if _, err := locker.Exec(ctx, `SELECT * FROM outbox.relay FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the leader's flag update to wait on the lock", func() bool {
		var n int
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE outbox.relay SET idle%'`).Scan(&n)
		return err == nil && n > 0
	})
	writer, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Rollback(ctx)
	late, err := outbox.Append(ctx, writer, outbox.Event{Type: "test.late.v1", Key: "b", Data: testData{N: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Let the leader set the flag and, if it may, go to sleep.
	select {
	case <-r.Drained():
	case <-time.After(500 * time.Millisecond):
	}
	if err := writer.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	got := collect(t, nt.JS, outbox.PublicStream, 2, 10*time.Second)
	if len(got) != 2 || got[1].Event.ID != late[0].ID {
		t.Fatalf("the late writer's event did not arrive within 10 s of its commit (the fallback poll is 30 s): the leader went to sleep while it ran; stream: %+v", got)
	}
	t.Logf("arrived within %s of the commit", time.Since(committed).Round(time.Millisecond))
}

// While committed rows wait behind a long transaction, the leader polls
// with the idle flag off: with it on, every writer would send a NOTIFY
// (each one a global lock at commit) that the busy leader never reads.
func TestBlockedLeaderKeepsTheIdleFlagOff(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE noise (n int)`); err != nil {
		t.Fatal(err)
	}
	r, _ := startRelay(t, db.Pool, nt.JS, relay.Options{PollInterval: 30 * time.Second})
	waitFor(t, 5*time.Second, "leader", func() bool { return r.State() == relay.Leader })
	<-r.Drained()
	idle := func() bool {
		var v bool
		if err := db.Pool.QueryRow(ctx, `SELECT idle FROM outbox.relay`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !idle() {
		t.Fatal("the sleeping leader has the idle flag off")
	}
	long, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Rollback(ctx)
	if _, err := long.Exec(ctx, `INSERT INTO noise VALUES (1)`); err != nil { // takes an id
		t.Fatal(err)
	}
	var want []string
	for i := range 20 {
		id, err := appendOne(ctx, db.Pool, "test.behind.v1", key(i%3), testData{N: i})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	waitFor(t, 5*time.Second, "the blocked leader to turn the idle flag off", func() bool { return !idle() })
	time.Sleep(300 * time.Millisecond)
	if idle() {
		t.Fatal("the idle flag came back on while rows still wait behind the long transaction")
	}
	if err := long.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := ids(collect(t, nt.JS, outbox.PublicStream, len(want), 10*time.Second))
	for _, id := range want {
		if got[id] != 1 {
			t.Fatalf("event %s arrived %d times", id, got[id])
		}
	}
}
