package relay_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/pgserver"
	"github.com/cairn-dev/cairn/testenv"
)

// versioned commits events over keys "k0".."k<keys-1>", ten to a
// transaction, numbering each key's events 1, 2, 3... (commit order), and
// records their ids.
type versioned struct {
	ids   map[string]keyedEvent
	next  map[string]int
	byVis [2]int
}

func newVersioned() *versioned {
	return &versioned{ids: map[string]keyedEvent{}, next: map[string]int{}}
}

func (v *versioned) commit(t *testing.T, pool *pgxpool.Pool, keys, n int) {
	t.Helper()
	ctx := context.Background()
	const perTx = 10
	for i := 0; i < n; i += perTx {
		var evs []outbox.Event
		var kv []keyedEvent
		for j := i; j < min(i+perTx, n); j++ {
			k := fmt.Sprintf("k%d", j%keys)
			v.next[k]++
			typ, vis := "test.restored.v1", outbox.Public
			if j%4 == 3 {
				typ, vis = "test.restored_internal.v1", outbox.Internal
			}
			evs = append(evs, outbox.Event{Type: typ, Key: k, Data: testData{Version: v.next[k]}})
			kv = append(kv, keyedEvent{key: k, version: v.next[k], vis: vis})
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			a, err := outbox.Append(ctx, tx, evs...)
			if err == nil {
				for x := range a {
					v.ids[a[x].ID] = kv[x]
					v.byVis[kv[x].vis]++
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// After a logical restore into a cluster whose transaction ids are lower,
// the cursor and the restored rows carry ids from the future. Here the
// whole outbox is moved 10^9 ids ahead of the cluster's counter, with rows
// published and unpublished, four of them published after the cursor was
// written; then writers commit before any leader notices, and a leader
// starts. Every event must go out once, per key in commit order, and none
// be deleted unpublished.
func TestCursorFromAnotherXidSpace(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	v := newVersioned()
	publish := func(n int) {
		a, stop := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a", DeleteDelay: time.Hour})
		waitFor(t, 10*time.Second, "a to publish", func() bool {
			m, err := a.Metrics(ctx)
			return err == nil && m.Backlog == 0 && m.Published == uint64(n)
		})
		stop()
	}
	v.commit(t, db.Pool, 5, 36)
	publish(36)
	// The dump's snapshot: the cursor as written then. Four more events
	// are published after it, so the restored cursor does not cover them.
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE dumped AS SELECT * FROM outbox.relay_cursor`); err != nil {
		t.Fatal(err)
	}
	v.commit(t, db.Pool, 5, 4)
	publish(4)
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox.relay_cursor c SET txid = d.txid, seq = d.seq, streams = d.streams, updated_at = d.updated_at FROM dumped d`); err != nil {
		t.Fatal(err)
	}
	v.commit(t, db.Pool, 5, 20) // restored, not yet published
	// The restore: every txid 10^9 ahead of this cluster's counter.
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox.events SET txid = txid + 1000000000;
		UPDATE outbox.relay_cursor SET txid = txid + 1000000000`); err != nil {
		t.Fatal(err)
	}
	v.commit(t, db.Pool, 7, 30) // written before a leader notices
	var behind int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events e, outbox.relay_cursor c WHERE (e.txid, e.seq) <= (c.txid, c.seq)
		AND e.created_at > c.updated_at`).Scan(&behind); err != nil {
		t.Fatal(err)
	}
	if behind != 0 {
		t.Fatalf("%d new events sort at or below the cursor", behind)
	}
	b, _ := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "b", DeleteDelay: 200 * time.Millisecond})
	waitFor(t, 20*time.Second, "b to lead", func() bool { return b.State() == relay.Leader })
	v.commit(t, db.Pool, 7, 30) // and after
	checkVersioned(t, nt, v)
	var cursorTxid int64
	if err := db.Pool.QueryRow(ctx, `SELECT txid FROM outbox.relay_cursor`).Scan(&cursorTxid); err != nil {
		t.Fatal(err)
	}
	if cursorTxid >= 1000000000 {
		t.Fatalf("the cursor is still at txid %d", cursorTxid)
	}
	waitFor(t, 10*time.Second, "published rows to be deleted", func() bool { return outboxRows(t, db.Pool) == 0 })
}

// checkVersioned waits for every event of v in the two streams and checks
// each arrived once, per key in commit order.
func checkVersioned(t *testing.T, nt *testenv.NATS, v *versioned) {
	t.Helper()
	public := readStream(t, nt.JS, outbox.PublicStream, v.byVis[outbox.Public], 30*time.Second)
	internal := readStream(t, nt.JS, outbox.InternalStream, v.byVis[outbox.Internal], 30*time.Second)
	checkOrderAndOnce(t, v.ids, append(public, internal...))
}

// A real logical restore: pg_dump of a database whose cluster has used
// more transaction ids than a fresh one, pg_restore into a fresh cluster,
// new writes there, then a relay on the restored database.
func TestPgDumpRestoreIntoAFreshCluster(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	// Make the source's counter well above a fresh cluster's.
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE burn (n int);
		DO $$ BEGIN FOR i IN 1..30000 LOOP BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$;
		DROP TABLE burn`); err != nil {
		t.Fatal(err)
	}
	v := newVersioned()
	v.commit(t, db.Pool, 5, 40)
	a, stopA := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a", DeleteDelay: time.Hour})
	waitFor(t, 10*time.Second, "a to publish", func() bool {
		m, err := a.Metrics(ctx)
		return err == nil && m.Backlog == 0 && m.Published == 40
	})
	stopA()
	v.commit(t, db.Pool, 5, 20) // not published before the dump

	bin, err := pgserver.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(t.TempDir(), "cairn.dump")
	if out, err := exec.Command(filepath.Join(bin, "pg_dump"), "-Fc", "-f", dump, "-d", db.URL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	target := startFreshCluster(t)
	if out, err := exec.Command(filepath.Join(bin, "pg_restore"), "--no-owner", "--exit-on-error", "-d", target.URL(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(ctx, target.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var next, cursor int64
	if err := pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint, (SELECT txid FROM outbox.relay_cursor)`).Scan(&next, &cursor); err != nil {
		t.Fatal(err)
	}
	t.Logf("restored cursor at txid %d; the fresh cluster's next transaction id is %d", cursor, next)
	if cursor < next {
		t.Fatalf("the fresh cluster is already past the cursor: the test proves nothing")
	}
	v.commit(t, pool, 7, 30) // new writes on the restored database
	startRelay(t, pool, nt.JS, relay.Options{Name: "b", DeleteDelay: 200 * time.Millisecond})
	v.commit(t, pool, 7, 30)
	checkVersioned(t, nt, v)
}

// startFreshCluster starts a PostgreSQL cluster of its own for this test.
func startFreshCluster(t *testing.T) *pgserver.Server {
	t.Helper()
	// Under /tmp with o+x, as testenv does: the server runs as an
	// unprivileged account when tests run as root.
	dir, err := os.MkdirTemp("/tmp", "cairn-restore-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := pgserver.Start(ctx, pgserver.Config{DataDir: filepath.Join(dir, "pg")})
	if err != nil {
		t.Fatalf("start a fresh PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop the fresh PostgreSQL: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	return s
}
