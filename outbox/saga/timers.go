package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// TimerOptions tune RunTimers; zero values mean the defaults.
type TimerOptions struct {
	// DB is what timer steps run on (the consumer handlers' pool).
	DB *pgxpool.Pool
	// LeasePool is what the poller's lease runs on (default DB).
	LeasePool *pgxpool.Pool
	// Holder names this replica in outbox.leases.
	Holder string
	Logger *slog.Logger
	// PollEvery is how often the poller looks for due timers when it
	// found none (default 100ms): a timer fires at most about this late,
	// plus the time its step takes, while the poller keeps up.
	PollEvery time.Duration
	// Workers fire due timers concurrently (default 4).
	Workers int
}

// TimerLease is the lease the timer poller holds: one replica fires
// timers at a time.
const TimerLease = "saga:timers"

// dueBatch bounds the timers read by one poll.
const dueBatch = 256

// RunTimers fires due timers until ctx ends, on the replica that holds the
// TimerLease lease. Each timer fires in a transaction of its own that
// locks its instance (in the same order as a step does: the instance
// first, then the timer) and deletes the timer row, so a timer fires at
// most once whatever the replicas do; the lease keeps the others from
// trying at all. A step that fails leaves its timer due again after a
// backoff (1 s doubling, at most a minute).
func (r *Registry) RunTimers(ctx context.Context, o TimerOptions) error {
	if o.LeasePool == nil {
		o.LeasePool = o.DB
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 100 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	log := o.Logger.With("component", "saga timers")
	l := lease.New(o.LeasePool, TimerLease, lease.Options{Holder: o.Holder, Logger: log})
	return l.Run(ctx, func(tctx context.Context, _ *lease.Term) error {
		log.Info("firing saga timers")
		return r.pollTimers(tctx, o, log)
	})
}

func (r *Registry) pollTimers(ctx context.Context, o TimerOptions, log *slog.Logger) error {
	for ctx.Err() == nil {
		due, err := dueTimers(ctx, o.DB)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("cannot read due timers", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		work := make(chan timer)
		var wg sync.WaitGroup
		for range min(o.Workers, len(due)) {
			wg.Go(func() {
				for t := range work {
					r.fireOne(ctx, o.DB, t, log)
				}
			})
		}
		for _, t := range due {
			work <- t
		}
		close(work)
		wg.Wait()
		if len(due) < dueBatch {
			sleep(ctx, o.PollEvery)
		}
	}
	return nil
}

func dueTimers(ctx context.Context, db *pgxpool.Pool) ([]timer, error) {
	rows, err := db.Query(ctx, `SELECT saga_type, id, name, version, fire_at, attempts FROM saga.timers
		WHERE fire_at <= clock_timestamp() ORDER BY fire_at LIMIT $1`, dueBatch)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (timer, error) {
		var t timer
		return t, row.Scan(&t.typ, &t.id, &t.name, &t.version, &t.fireAt, &t.attempts)
	})
}

// fireOne fires one timer in its own transaction; on failure it leaves the
// timer due again after a backoff.
func (r *Registry) fireOne(ctx context.Context, db *pgxpool.Pool, t timer, log *slog.Logger) {
	s, known := r.saga(t.typ)
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if !known {
			return fmt.Errorf("no module registers saga %s", t.typ)
		}
		inst, err := lockInstance(ctx, tx, t.typ, t.id)
		if errors.Is(err, ErrNotFound) {
			_, err = tx.Exec(ctx, deleteTimerSQL, t.typ, t.id, t.name)
			return err
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM saga.timers WHERE saga_type = $1 AND id = $2 AND name = $3 AND version = $4 AND fire_at = $5`,
			t.typ, t.id, t.name, t.version, t.fireAt)
		if err != nil || tag.RowsAffected() == 0 {
			return err // 0 rows: fired or set again meanwhile
		}
		return s.fire(ctx, tx, inst, t)
	})
	if err == nil || ctx.Err() != nil {
		return
	}
	wait := math.Min(60, math.Pow(2, float64(t.attempts)))
	log.Warn("saga timer failed; it fires again later", "saga", t.typ, "id", t.id, "timer", t.name, "attempt", t.attempts+1, "wait_s", wait, "err", err)
	_, uerr := db.Exec(ctx, `UPDATE saga.timers SET attempts = attempts + 1, fire_at = clock_timestamp() + make_interval(secs => $6)
		WHERE saga_type = $1 AND id = $2 AND name = $3 AND version = $4 AND fire_at = $5`, t.typ, t.id, t.name, t.version, t.fireAt, wait)
	if uerr != nil && ctx.Err() == nil {
		log.Warn("cannot postpone a failed saga timer", "saga", t.typ, "id", t.id, "timer", t.name, "err", uerr)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
