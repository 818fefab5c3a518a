package consumer_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

const handoverTTL = 2 * time.Second

// handling records, on one clock, when each replica was inside a handler
// or an effect, and which events each sent outside.
type handling struct {
	mu      sync.Mutex
	spans   map[string][][2]time.Time // replica -> [start, end]
	outside map[string]map[string]int // replica -> event id -> outside calls
}

func newHandling() *handling {
	return &handling{spans: map[string][][2]time.Time{}, outside: map[string]map[string]int{"a": {}, "b": {}}}
}

func (h *handling) span(replica string, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spans[replica] = append(h.spans[replica], [2]time.Time{start, time.Now()})
}

// sub is the subscription as replica runs it: an outside call of 50 ms
// (an Effect, checking the term right before it acts), then the effect
// recorded in the transaction.
func (h *handling) sub(replica string) outbox.Subscription {
	return outbox.Subscription{Consumer: "test_handover", EventType: "test.happened.v1",
		Effect: func(ctx context.Context, _ *pgxpool.Pool, d outbox.Delivery) (any, error) {
			start := time.Now()
			defer h.span(replica, start)
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if err := d.CheckTerm(); err != nil {
				return nil, err
			}
			h.mu.Lock()
			h.outside[replica][d.Event.ID]++
			h.mu.Unlock()
			return nil, nil
		},
		Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
			start := time.Now()
			defer h.span(replica, start)
			var data struct{ N int }
			if err := json.Unmarshal(d.Event.Data, &data); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, key, n, replica) VALUES ('test_handover', $1, $2, $3, $4)`,
				d.Event.ID, d.Event.Subject, data.N, replica)
			return err
		}}
}

// A replica whose path to PostgreSQL is blackholed (its sockets stay open,
// so PostgreSQL keeps its sessions) stops handling when its lease term runs
// out by its own clock; the standby takes over only after that. Nothing is
// handled by both at once, every event's database effect happens once, and
// the standby never repeats an outside call for an event the first replica
// had committed. With the advisory lock this replaced, the standby never
// took over: PostgreSQL kept the cut-off session's lock.
func TestCutOffHolderStopsBeforeStandbyStarts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN replica text`); err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, e.db.URL)
	// PostgreSQL ends the cut-off replica's open transactions (and their
	// row locks) after 3s, as Cairn's handler pool asks it to.
	poolA := bh.pool(t, e.db.URL, map[string]string{"idle_in_transaction_session_timeout": "3s"})
	h := newHandling()
	log := slog.New(slog.DiscardHandler)
	rtA := consumer.New(poolA, e.ownJS(t), []outbox.Subscription{h.sub("a")},
		consumer.Options{Logger: log, Holder: "a", LeaseTTL: handoverTTL})
	stopA := start(rtA)
	waitFor(t, 30*time.Second, "a to consume", func() bool { return rtA.Status()[0].State == consumer.Consuming })
	rtB := consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{h.sub("b")},
		consumer.Options{Logger: log, Holder: "b", LeaseTTL: handoverTTL})
	stopB := start(rtB)
	defer func() { stopB(); stopA(); bh.Close(); poolA.Close() }()

	ks := keys(20)
	e.publish(t, "test.happened.v1", ks, 20)
	waitFor(t, 30*time.Second, "a to be under way", func() bool { return e.count(t, `SELECT count(*) FROM effects`) >= 60 })
	st := rtB.Status()[0]
	if st.State != consumer.StandingBy || st.Lease.Holder != "a" || !st.Lease.Live || st.Lease.Note != "consuming" {
		t.Fatalf("b's status while a consumes: %+v", st)
	}
	if err := rtB.Ready(); err != nil {
		t.Fatalf("b not ready while a consumes: %v", err)
	}
	bh.Cut()
	cut := time.Now()
	left := 400 - e.count(t, `SELECT count(*) FROM effects`)
	if left <= 0 {
		t.Fatal("a handled everything before the cut; the test proves nothing")
	}
	waitFor(t, 90*time.Second, "every event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) >= 400 })
	time.Sleep(500 * time.Millisecond)

	if n := e.count(t, `SELECT count(DISTINCT event_id) FROM effects`); n != 400 || e.count(t, `SELECT count(*) FROM effects`) != 400 {
		t.Fatalf("%d effects for %d distinct events, want 400 each", e.count(t, `SELECT count(*) FROM effects`), n)
	}
	inOrder(t, e.effects(t, "test_handover"), ks, 20)

	h.mu.Lock()
	defer h.mu.Unlock()
	var lastA, firstB time.Time
	for _, s := range h.spans["a"] {
		if s[1].After(lastA) {
			lastA = s[1]
		}
	}
	for _, s := range h.spans["b"] {
		if firstB.IsZero() || s[0].Before(firstB) {
			firstB = s[0]
		}
	}
	if firstB.IsZero() || !lastA.Before(firstB) {
		t.Fatalf("a handled until %s, b started at %s: they overlap", lastA.Format(time.StampMicro), firstB.Format(time.StampMicro))
	}
	t.Logf("cut with %d events left; a's last handler returned %s after the cut, b's first started %s after it",
		left, lastA.Sub(cut).Round(time.Millisecond), firstB.Sub(cut).Round(time.Millisecond))

	rows, err := e.db.Pool.Query(ctx, `SELECT event_id, replica FROM effects`)
	if err != nil {
		t.Fatal(err)
	}
	twice := 0
	for rows.Next() {
		var id, by string
		if err := rows.Scan(&id, &by); err != nil {
			t.Fatal(err)
		}
		a, b := h.outside["a"][id], h.outside["b"][id]
		switch {
		case a > 1 || b > 1:
			t.Errorf("event %s sent outside %d times by a, %d by b", id, a, b)
		case by == "a" && b > 0:
			t.Errorf("event %s was committed by a, and b sent it outside again", id)
		case a+b == 0:
			t.Errorf("event %s recorded by %s without an outside call", id, by)
		case a == 1 && b == 1:
			twice++ // a called out, then could not commit: at least once outside
		}
	}
	t.Logf("%d events sent outside by both (a's commit was cut off)", twice)
}

// A holder that wakes up after another replica took its lease over (here:
// its handler was stuck past the end of its term while its lease path was
// cut) commits nothing: the inbox insert is fenced by the lease token. And
// its handler sees CheckTerm fail before any outside call.
func TestOldHolderWakingAfterTakeoverCommitsNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN replica text`); err != nil {
		t.Fatal(err)
	}
	bh := newBlackhole(t, e.db.URL)
	leasesA := bh.pool(t, e.db.URL, nil)
	stuck, resume := make(chan struct{}), make(chan struct{})
	var stuckOnce sync.Once
	var termAfterWaking atomic.Value
	sub := func(replica string) outbox.Subscription {
		return outbox.Subscription{Consumer: "test_fence", EventType: "test.happened.v1",
			Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
				if _, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, key, n, replica) VALUES ('test_fence', $1, $2, 1, $3)`,
					d.Event.ID, d.Event.Subject, replica); err != nil {
					return err
				}
				if replica == "a" {
					stuckOnce.Do(func() { close(stuck) })
					<-resume // deaf to its context, like a process frozen mid-handler
					termAfterWaking.Store(d.CheckTerm() != nil)
				}
				return nil
			}}
	}
	log := slog.New(slog.DiscardHandler)
	rtA := consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub("a")},
		consumer.Options{Logger: log, Holder: "a", LeaseTTL: handoverTTL, LeasePool: leasesA})
	stopA := start(rtA)
	defer func() { stopA(); bh.Close(); leasesA.Close() }()
	e.publish(t, "test.happened.v1", []string{"k"}, 1)
	select {
	case <-stuck:
	case <-time.After(30 * time.Second):
		t.Fatal("a never handled the event")
	}
	rtB := consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub("b")},
		consumer.Options{Logger: log, Holder: "b", LeaseTTL: handoverTTL})
	stopB := start(rtB)
	defer stopB()
	bh.Cut() // a can no longer renew
	waitFor(t, 30*time.Second, "b to take the lease", func() bool {
		var holder string
		_ = e.db.Pool.QueryRow(ctx, `SELECT holder FROM outbox.leases WHERE name = 'consumer:test_fence'`).Scan(&holder)
		return holder == "b"
	})
	close(resume) // a wakes up, before b has handled the event
	waitFor(t, 30*time.Second, "the event to be handled", func() bool {
		return e.count(t, `SELECT count(*) FROM inbox.processed WHERE consumer = 'test_fence'`) == 1
	})
	time.Sleep(500 * time.Millisecond)
	var by string
	if err := e.db.Pool.QueryRow(ctx, `SELECT string_agg(replica, ',') FROM effects`).Scan(&by); err != nil {
		t.Fatal(err)
	}
	if by != "b" {
		t.Fatalf("effects committed by %q, want only b's: the old holder committed after the takeover", by)
	}
	if ended, _ := termAfterWaking.Load().(bool); !ended {
		t.Fatal("a's handler, woken after the takeover, was told its term still held")
	}
}
