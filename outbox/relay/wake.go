package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// What the leader does after a read found nothing and no round is pending.
type nextStep int

const (
	readAgain nextStep = iota // look at once
	waitShort                 // look again in a few milliseconds
	goToSleep                 // wait for a NOTIFY, the poll, or bookkeeping
)

// sleepCheck decides whether the leader may sleep. Writers send a NOTIFY
// only while outbox.relay.idle is set, and a writer reads the flag in its
// own statement after its insert (see outbox.Append). So:
//
//   - while committed rows wait behind a running transaction, the leader
//     polls, and keeps the flag off: every writer would otherwise NOTIFY,
//     each NOTIFY taking a global lock at commit and piling up unread on
//     the leader's connection;
//   - to go to sleep it sets the flag, then waits until every writer that
//     may have read the flag before it was set has finished, and reads once
//     more. Such a writer took its transaction id before reading the flag,
//     so before the flag committed; horizon is an id taken after that
//     commit, so waiting until no transaction below horizon runs covers it.
//     (pg_snapshot_xmax is not such an id: it is one past the latest
//     *completed* one, and a writer with a later id still running is not
//     below it.)
func (l *leader) sleepCheck(ctx context.Context, horizon *int64) (nextStep, error) {
	var blocked bool
	cctx, cancel := l.call(ctx)
	err := l.conn.QueryRow(cctx, blockedSQL, l.readCur.txid, l.readCur.seq).Scan(&blocked)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("relay: check blocked rows: %w", err)
	}
	if blocked {
		*horizon = 0
		if l.idle {
			if err := l.setIdle(ctx, false); err != nil {
				return 0, err
			}
		}
		return waitShort, nil
	}
	if !l.idle {
		h, err := l.goIdle(ctx)
		if err != nil {
			return 0, err
		}
		*horizon = h
		l.r.idles.Add(1)
		return readAgain, nil
	}
	if *horizon > 0 {
		var xmin int64
		cctx, cancel := l.call(ctx)
		err := l.conn.QueryRow(cctx, xminSQL).Scan(&xmin)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("relay: read xmin: %w", err)
		}
		if xmin < *horizon {
			return waitShort, nil
		}
		// Every writer that missed the flag has finished: read once more
		// before sleeping.
		*horizon = 0
		return readAgain, nil
	}
	return goToSleep, nil
}

// setIdle writes outbox.relay.idle.
func (l *leader) setIdle(ctx context.Context, idle bool) error {
	b := &pgx.Batch{}
	b.Queue(setIdleSQL[0])
	b.Queue(setIdleSQL[1])
	b.Queue(setIdleSQL[2], idle)
	b.Queue(setIdleSQL[3])
	cctx, cancel := l.call(ctx)
	defer cancel()
	if err := l.conn.SendBatch(cctx, b).Close(); err != nil {
		return fmt.Errorf("relay: set idle=%v: %w", idle, err)
	}
	l.idle = idle
	return nil
}

// goIdle sets the flag and, in the same round trip, takes a transaction id
// after its commit: the horizon sleepCheck waits for.
func (l *leader) goIdle(ctx context.Context) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(setIdleSQL[0])
	b.Queue(setIdleSQL[1])
	b.Queue(setIdleSQL[2], true)
	b.Queue(setIdleSQL[3])
	b.Queue(horizonSQL)
	cctx, cancel := l.call(ctx)
	defer cancel()
	br := l.conn.SendBatch(cctx, b)
	var err error
	for range 4 {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	var horizon int64
	if err == nil {
		err = br.QueryRow().Scan(&horizon)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("relay: set idle: %w", err)
	}
	l.idle = true
	return horizon, nil
}

// sleep waits for a notification, the fallback poll, or the next
// bookkeeping (cursor or delete) that is due.
func (l *leader) sleep(ctx context.Context) error {
	wait := l.r.opt.PollInterval
	if l.cur.after(l.persisted) {
		wait = min(wait, 100*time.Millisecond) // wake to record the cursor
	}
	if len(l.acked) > 0 {
		wait = min(wait, time.Until(l.acked[0].when.Add(l.r.opt.DeleteDelay+deleteEvery)))
	}
	if l.inherited != nil {
		wait = min(wait, time.Until(l.inherited.due))
	}
	if wait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err := l.conn.WaitForNotification(wctx)
	if err != nil && wctx.Err() == nil {
		return fmt.Errorf("relay: wait for notification: %w", err)
	}
	l.dropNotifications()
	return nil
}

// dropNotifications discards the notifications already received: one
// wake-up is enough, and the connection would otherwise keep them all.
func (l *leader) dropNotifications() {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if n, _ := l.conn.WaitForNotification(done); n == nil {
			return
		}
	}
}
