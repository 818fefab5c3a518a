package replay_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// The replay tests run a module of their own, replaytest: its event
// replaytest.ticked.v1 carries a key and a number that grows per key, and
// its rebuildable consumers keep, per consumer, one row per event with how
// many times it was handled (a duplicate shows as times > 1, a loss as a
// missing row) and, per key, the last number seen and how often a number
// came after a larger one (per-key order).

var eventTicked = outbox.Declare[ticked](outbox.EventSpec{
	Type: "replaytest.ticked.v1", Visibility: outbox.Public,
	Description: "A test tick: key and a number that grows per key.",
})

type ticked struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

var replaytestFiles = fstest.MapFS{"migrations/00001_replaytest.sql": {Data: []byte(`-- +goose Up
CREATE SCHEMA replaytest;
CREATE TABLE replaytest.seen (
    consumer text   NOT NULL,
    event_id uuid   NOT NULL,
    key      text   NOT NULL,
    n        int    NOT NULL,
    times    int    NOT NULL,
    -- when the event was appended, and when it was (last) handled
    at         timestamptz,
    handled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, event_id)
);
CREATE TABLE replaytest.keys (
    consumer     text NOT NULL,
    key          text NOT NULL,
    last_n       int  NOT NULL,
    out_of_order int  NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, key)
);
-- +goose Down
DROP SCHEMA replaytest CASCADE;
`)}}

// The consumers of replaytest.
const (
	consumerSeen   = "replaytest_seen"   // from now, rebuildable
	consumerSeeded = "replaytest_seeded" // from the beginning (added later)
)

// replaytestModule returns the module; withSeeded adds the consumer that
// starts at the beginning of history, as a later version of a module would.
// slowBatch (if > 0) is slept per batch of a replay: a rebuild long enough
// to be killed in the middle.
func replaytestModule(withSeeded bool, slowBatch time.Duration) modules.Definition {
	return modules.Define("replaytest", replaytestFiles, func(d modules.Deps) (*struct{}, error) {
		opts := func(consumer string) []outbox.Option {
			return []outbox.Option{
				outbox.RebuildableWith(func(ctx context.Context, tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, `DELETE FROM replaytest.seen WHERE consumer = $1`, consumer); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, `DELETE FROM replaytest.keys WHERE consumer = $1`, consumer)
					return err
				}),
				outbox.ReplayBatch(func(ctx context.Context, tx pgx.Tx, es []outbox.Received[ticked]) error {
					time.Sleep(slowBatch)
					for _, e := range es {
						if err := see(ctx, tx, consumer, e); err != nil {
							return err
						}
					}
					return nil
				}),
			}
		}
		handle := func(consumer string) func(context.Context, pgx.Tx, outbox.Received[ticked]) error {
			return func(ctx context.Context, tx pgx.Tx, e outbox.Received[ticked]) error {
				return see(ctx, tx, consumer, e)
			}
		}
		if err := outbox.Handle(d.Consumers, consumerSeen, eventTicked, handle(consumerSeen), opts(consumerSeen)...); err != nil {
			return nil, err
		}
		if withSeeded {
			o := append(opts(consumerSeeded), outbox.StartFrom(outbox.FromBeginning))
			if err := outbox.Handle(d.Consumers, consumerSeeded, eventTicked, handle(consumerSeeded), o...); err != nil {
				return nil, err
			}
		}
		return &struct{}{}, nil
	})
}

// see records one handling of e by consumer.
func see(ctx context.Context, tx pgx.Tx, consumer string, e outbox.Received[ticked]) error {
	if _, err := tx.Exec(ctx, `INSERT INTO replaytest.seen (consumer, event_id, key, n, times, at) VALUES ($1, $2, $3, $4, 1, $5)
		ON CONFLICT (consumer, event_id) DO UPDATE SET times = replaytest.seen.times + 1, handled_at = clock_timestamp()`,
		consumer, e.ID, e.Data.Key, e.Data.N, e.Time); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO replaytest.keys (consumer, key, last_n) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, key) DO UPDATE SET last_n = EXCLUDED.last_n,
			out_of_order = replaytest.keys.out_of_order + CASE WHEN replaytest.keys.last_n >= EXCLUDED.last_n THEN 1 ELSE 0 END`,
		consumer, e.Data.Key, e.Data.N)
	return err
}

// writer appends ticks to the outbox as a module would, over keys keys, n
// per transaction, until stopped; it counts what committed.
type writer struct {
	pool    *pgxpool.Pool
	keys    int
	next    []int
	written atomic.Int64
	stop    chan struct{}
	done    chan error
	once    sync.Once
}

func newWriter(pool *pgxpool.Pool, keys int) *writer {
	return &writer{pool: pool, keys: keys, next: make([]int, keys)}
}

// write appends total events now, perTx to a transaction.
func (w *writer) write(ctx context.Context, total, perTx int) error {
	for total > 0 {
		n := min(perTx, total)
		evs := make([]outbox.Event, n)
		for i := range evs {
			k := (int(w.written.Load()) + i) % w.keys
			w.next[k]++
			key := fmt.Sprintf("k%03d", k)
			evs[i] = eventTicked.New(key, ticked{Key: key, N: w.next[k]})
		}
		if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error { _, err := outbox.Append(ctx, tx, evs...); return err }); err != nil {
			return fmt.Errorf("writer: %w", err)
		}
		w.written.Add(int64(n))
		total -= n
	}
	return nil
}

// keepWriting appends perTick events every tick until Stop.
func (w *writer) keepWriting(perTick int, tick time.Duration) {
	w.stop, w.done = make(chan struct{}), make(chan error, 1)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				w.done <- nil
				return
			case <-t.C:
				if err := w.write(context.Background(), perTick, perTick); err != nil {
					w.done <- err
					return
				}
			}
		}
	}()
}

// Stop ends keepWriting and returns how many events were written in all.
func (w *writer) Stop(t *testing.T) int {
	t.Helper()
	w.once.Do(func() { close(w.stop) })
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
	return int(w.written.Load())
}

// seenReport checks consumer's rows against want events: none lost, none
// handled twice, no key out of order.
func seenReport(t *testing.T, count func(string, ...any) int, consumer string, want int) {
	t.Helper()
	rows := count(`SELECT count(*) FROM replaytest.seen WHERE consumer = $1`, consumer)
	twice := count(`SELECT count(*) FROM replaytest.seen WHERE consumer = $1 AND times > 1`, consumer)
	disorder := count(`SELECT coalesce(sum(out_of_order), 0) FROM replaytest.keys WHERE consumer = $1`, consumer)
	if rows != want || twice != 0 || disorder != 0 {
		t.Fatalf("%s: %d of %d events handled (%d lost), %d handled more than once, %d out of per-key order",
			consumer, rows, want, want-rows, twice, disorder)
	}
}

// replaytestTables is the module with its tables and no consumer: the
// benchmark replays into subscriptions of its own.
func replaytestTables() modules.Definition {
	return modules.Define("replaytest", replaytestFiles, func(modules.Deps) (*struct{}, error) { return &struct{}{}, nil })
}
