package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

type env struct {
	db *testenv.DB
	nt *testenv.NATS
}

// newEnv starts a database, NATS and a relay, and creates the table the
// test handlers write their effects to.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{db: testenv.MustDB(t), nt: testenv.MustNATS(t)}
	if _, err := e.db.Pool.Exec(context.Background(), `CREATE TABLE effects (consumer text, event_id text, key text, n int, seq bigserial)`); err != nil {
		t.Fatal(err)
	}
	testenv.MustRelay(t, e.db, e.nt)
	return e
}

func runUntilCleanup(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *env) runtime(t *testing.T, subs ...outbox.Subscription) *consumer.Runtime {
	t.Helper()
	rt := consumer.New(e.db.Pool, e.nt.JS, subs, consumer.Options{Logger: slog.New(slog.DiscardHandler), PausedRetry: 200 * time.Millisecond})
	runUntilCleanup(t, rt.Run)
	return rt
}

// publish commits one event per key and number, in order.
func (e *env) publish(t *testing.T, typ string, keys []string, perKey int) {
	t.Helper()
	ctx := context.Background()
	for n := 1; n <= perKey; n++ {
		for _, k := range keys {
			err := pgx.BeginFunc(ctx, e.db.Pool, func(tx pgx.Tx) error {
				_, err := outbox.Append(ctx, tx, outbox.Event{Type: typ, Key: k, Data: map[string]int{"n": n}})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// record is a handler effect: one row per handled event.
func record(consumer string) outbox.Handler {
	return func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
		var data struct{ N int }
		if err := json.Unmarshal(d.Event.Data, &data); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, key, n) VALUES ($1, $2, $3, $4)`, consumer, d.Event.ID, d.Event.Subject, data.N)
		return err
	}
}

func (e *env) effects(t *testing.T, consumer string) map[string][]int {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT key, n FROM effects WHERE consumer = $1 ORDER BY seq`, consumer)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = append(out[k], n)
	}
	return out
}

func (e *env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func keys(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("key%02d", i))
	}
	return out
}

func inOrder(t *testing.T, got map[string][]int, ks []string, perKey int) {
	t.Helper()
	for _, k := range ks {
		if len(got[k]) != perKey {
			t.Fatalf("key %s: %d effects, want %d: %v", k, len(got[k]), perKey, got[k])
		}
		for i, n := range got[k] {
			if n != i+1 {
				t.Fatalf("key %s handled out of order or twice: %v", k, got[k])
			}
		}
	}
}

// Every event is handled once, each key in stream order, and the inbox
// holds one row per event.
func TestHandledOnceInOrder(t *testing.T) {
	e := newEnv(t)
	ks := keys(10)
	e.runtime(t, outbox.Subscription{Consumer: "test_record", EventType: "test.happened.v1", Handle: record("test_record")})
	e.publish(t, "test.happened.v1", ks, 20)
	waitFor(t, 30*time.Second, "200 effects", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 200 })
	time.Sleep(300 * time.Millisecond)
	inOrder(t, e.effects(t, "test_record"), ks, 20)
	if n := e.count(t, `SELECT count(*) FROM inbox.processed WHERE consumer = 'test_record'`); n != 200 {
		t.Fatalf("%d inbox rows, want 200", n)
	}
}

// A consumer's events arrive again (its durable consumer is deleted, so
// JetStream delivers the whole history anew, as after lost acks): the
// inbox turns every redelivery into a no-op.
func TestRedeliveryHasNoSecondEffect(t *testing.T) {
	e := newEnv(t)
	ks := keys(5)
	sub := outbox.Subscription{Consumer: "test_redeliver", EventType: "test.happened.v1", Handle: record("test_redeliver")}
	ctx, cancel := context.WithCancel(context.Background())
	rt := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{sub}, consumer.Options{Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	e.publish(t, "test.happened.v1", ks, 10)
	waitFor(t, 30*time.Second, "50 effects", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 50 })
	cancel()
	<-done
	if err := e.nt.JS.DeleteConsumer(context.Background(), outbox.PublicStream, "test_redeliver"); err != nil {
		t.Fatal(err)
	}
	var redelivered atomic.Int64
	sub.Handle = func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
		redelivered.Add(1)
		return record("test_redeliver")(ctx, tx, d)
	}
	e.runtime(t, sub)
	e.publish(t, "test.happened.v1", ks[:1], 1) // one new event after the old ones
	waitFor(t, 30*time.Second, "the new event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 51 })
	time.Sleep(500 * time.Millisecond)
	if got := e.count(t, `SELECT count(*) FROM effects`); got != 51 {
		t.Fatalf("%d effects after redelivery, want 51", got)
	}
	if n := redelivered.Load(); n != 1 {
		t.Fatalf("handler ran %d times for 51 redelivered events, want 1 (only the new one)", n)
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.processed`); n != 51 {
		t.Fatalf("%d inbox rows, want 51", n)
	}
}

// A handler failing for one key parks that event after MaxAttempts while
// the other keys flow; once the cause is fixed, the admin retry succeeds.
func TestFailingKeyIsParkedOthersFlow(t *testing.T) {
	e := newEnv(t)
	var broken atomic.Bool
	broken.Store(true)
	sub := outbox.Subscription{Consumer: "test_picky", EventType: "test.happened.v1", MaxAttempts: 3, MaxBackoff: 100 * time.Millisecond,
		Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
			if d.Event.Subject == "poison" && broken.Load() {
				return errors.New("cannot handle poison yet")
			}
			return record("test_picky")(ctx, tx, d)
		}}
	rt := e.runtime(t, sub)
	ks := keys(4)
	e.publish(t, "test.happened.v1", []string{"poison"}, 1)
	e.publish(t, "test.happened.v1", ks, 10)
	waitFor(t, 30*time.Second, "the healthy keys", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 40 })
	inOrder(t, e.effects(t, "test_picky"), ks, 10)
	waitFor(t, 30*time.Second, "a dead letter", func() bool { return e.count(t, `SELECT count(*) FROM inbox.dead_letters`) == 1 })

	srv := httptest.NewServer(adminServer(rt, "s3cret"))
	defer srv.Close()
	call := func(method, path, token string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/admin"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, _ := call("GET", "/dead-letters", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := call("GET", "/dead-letters", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, list := call("GET", "/dead-letters", "s3cret")
	dls := list["dead_letters"].([]any)
	if code != 200 || len(dls) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	dl := dls[0].(map[string]any)
	if dl["consumer"] != "test_picky" || dl["key"] != "poison" || dl["attempts"].(float64) != 3 || dl["last_error"] != "cannot handle poison yet" {
		t.Fatalf("dead letter: %v", dl)
	}
	id := dl["id"].(string)
	if code, body := call("POST", "/dead-letters/"+id+"/retry", "s3cret"); code != 409 || body["error"].(map[string]any)["code"] != "retry_failed" {
		t.Fatalf("retry while still broken: %d %v", code, body)
	}
	broken.Store(false)
	if code, body := call("POST", "/dead-letters/"+id+"/retry", "s3cret"); code != 200 {
		t.Fatalf("retry after the fix: %d %v", code, body)
	}
	if got := e.effects(t, "test_picky")["poison"]; len(got) != 1 {
		t.Fatalf("poison handled %d times, want 1", len(got))
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters`); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
	if code, _ := call("POST", "/dead-letters/"+id+"/retry", "s3cret"); code != 404 {
		t.Fatalf("retry of a removed dead letter: %d", code)
	}
	if code, _ := call("DELETE", "/dead-letters/not-an-id", "s3cret"); code != 400 {
		t.Fatalf("malformed id: %d", code)
	}
	off := httptest.NewServer(adminServer(rt, ""))
	defer off.Close()
	resp, err := http.Get(off.URL + "/api/v1/admin/dead-letters")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("admin without a configured token: %d, want 403", resp.StatusCode)
	}
}

func adminServer(rt *consumer.Runtime, token string) http.Handler {
	e := web.NewServer(slog.New(slog.DiscardHandler))
	rt.RegisterAdmin(e.Group("/api/v1/admin"), token)
	return e
}

// While an outside system is down the whole consumer pauses, nothing is
// parked, and when it is back every event is handled once, in order.
func TestUnavailablePausesAndResumesInOrder(t *testing.T) {
	e := newEnv(t)
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	calls := 0
	sub := outbox.Subscription{Consumer: "test_outside", EventType: "test.happened.v1", MaxAttempts: 2,
		Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
			mu.Lock()
			calls++
			mu.Unlock()
			if down.Load() {
				return outbox.Unavailable(errors.New("connection refused"))
			}
			return record("test_outside")(ctx, tx, d)
		}}
	e.runtime(t, sub)
	ks := keys(6)
	e.publish(t, "test.happened.v1", ks, 5)
	time.Sleep(3 * time.Second)
	mu.Lock()
	during := calls
	mu.Unlock()
	if e.count(t, `SELECT count(*) FROM effects`) != 0 || e.count(t, `SELECT count(*) FROM inbox.dead_letters`) != 0 {
		t.Fatal("events were handled or parked while the outside system was down")
	}
	// Paused means slow probing, not every lane hammering the system.
	if during > 40 {
		t.Fatalf("%d handler calls in 3s while down; the consumer did not pause", during)
	}
	down.Store(false)
	waitFor(t, 30*time.Second, "all events after recovery", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 30 })
	time.Sleep(300 * time.Millisecond)
	inOrder(t, e.effects(t, "test_outside"), ks, 5)
}

// Handled event ids are forgotten after the retention; recent ones stay.
func TestInboxIsCleanedAfterRetention(t *testing.T) {
	e := newEnv(t)
	sub := outbox.Subscription{Consumer: "test_clean", EventType: "test.happened.v1", Handle: record("test_clean")}
	e.publish(t, "test.happened.v1", keys(3), 2)
	rt := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{sub}, consumer.Options{
		Logger: slog.New(slog.DiscardHandler), InboxRetention: 2 * time.Second, InboxCleanupEvery: 200 * time.Millisecond})
	runUntilCleanup(t, rt.Run)
	waitFor(t, 30*time.Second, "6 effects", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 6 })
	if n := e.count(t, `SELECT count(*) FROM inbox.processed WHERE consumer = 'test_clean'`); n != 6 {
		t.Fatalf("%d inbox rows right after handling, want 6", n)
	}
	waitFor(t, 30*time.Second, "the inbox to be cleaned", func() bool {
		return e.count(t, `SELECT count(*) FROM inbox.processed WHERE consumer = 'test_clean'`) == 0
	})
	e.publish(t, "test.happened.v1", keys(1), 1)
	waitFor(t, 30*time.Second, "a new event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 7 })
	if n := e.count(t, `SELECT count(*) FROM inbox.processed WHERE consumer = 'test_clean'`); n != 1 {
		t.Fatalf("%d inbox rows after a new event, want 1 (the recent one is kept)", n)
	}
}
