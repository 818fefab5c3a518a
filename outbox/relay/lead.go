package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox/lake"
)

type cursor struct{ txid, seq int64 }

const (
	// idlePoll is the leader's poll step while it waits IdleAfter before
	// going idle.
	idlePoll = time.Millisecond
	// deleteEvery groups the deletes of published rows: one per read was
	// 130 DELETE statements a second at 2,000 deposits/s.
	deleteEvery = 100 * time.Millisecond
)

func (c cursor) after(o cursor) bool {
	return c.txid > o.txid || (c.txid == o.txid && c.seq > o.seq)
}

type row struct {
	at      cursor
	id      string
	subject string
	payload []byte
}

type ackedAt struct {
	at   cursor
	when time.Time
	acks []lake.Ack // where the batch's rows were stored, for the lake
}

// leader is the state of one leadership term, on the connection that holds
// the lock.
type leader struct {
	r         *Relay
	conn      *pgx.Conn
	cur       cursor    // last row published and acked
	readCur   cursor    // last row read and submitted (>= cur)
	pending   *inflight // submitted batch whose acks are awaited
	persisted cursor    // last cursor written to outbox.relay_cursor
	persistAt time.Time // when it was written
	unpersist int       // rows acked since
	deleted   cursor    // rows up to here have been deleted
	acked     []ackedAt // published batches whose rows are not yet deleted
	seen      map[string]bool
	idle      bool // outbox.relay.idle as last written
}

func (r *Relay) lead(ctx context.Context, conn *pgx.Conn) error {
	l := &leader{r: r, conn: conn}
	if _, err := conn.Exec(ctx, `LISTEN cairn_outbox`); err != nil {
		return fmt.Errorf("relay: listen: %w", err)
	}
	if _, err := conn.Exec(ctx, `UPDATE outbox.relay SET leader = $1, updated_at = now()`, r.opt.Name); err != nil {
		return fmt.Errorf("relay: record leader: %w", err)
	}
	if err := conn.QueryRow(ctx, loadCursorSQL).Scan(&l.cur.txid, &l.cur.seq); err != nil {
		return fmt.Errorf("relay: load cursor: %w", err)
	}
	l.persisted = l.cur
	l.readCur = l.cur
	// Rows up to the cursor were published by an earlier leader; keep them
	// one delete delay longer in case the stream has not synced them yet.
	l.acked = append(l.acked, ackedAt{at: l.cur, when: time.Now()})
	seen, err := r.recentlyPublished(ctx)
	if err != nil {
		return err
	}
	l.seen = seen
	if err := l.setIdle(ctx, false); err != nil {
		return err
	}
	return l.loop(ctx)
}

func (l *leader) loop(ctx context.Context) error {
	var horizon int64 // while idle: transactions below it may not have notified
	var emptySince time.Time
	shortWait := time.Millisecond
	for {
		if ctx.Err() != nil {
			return nil
		}
		rows, err := l.readAndBookkeep(ctx)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			if l.idle {
				if err := l.setIdle(ctx, false); err != nil {
					return err
				}
				horizon = 0
			}
			next, err := l.submit(rows)
			if err != nil {
				return err
			}
			// Wait for the previous batch only now, so reading and
			// submitting this one overlapped its acks.
			if l.pending != nil {
				if err := l.await(ctx, l.pending); err != nil {
					return err
				}
			}
			l.pending = next
			shortWait = time.Millisecond
			emptySince = time.Time{}
			continue
		}
		if l.pending != nil {
			if err := l.await(ctx, l.pending); err != nil {
				return err
			}
			l.pending = nil
			continue
		}
		// Under load the next commit is usually a millisecond away. Going
		// idle now would cost two flag updates and a NOTIFY from every
		// writer in between (measured: 130 idle/busy flips a second at
		// 2,000 deposits/s), so keep polling for a little while first.
		if !l.idle {
			if emptySince.IsZero() {
				emptySince = time.Now()
			}
			if time.Since(emptySince) < l.r.opt.IdleAfter {
				if !sleep(ctx, idlePoll) {
					return nil
				}
				continue
			}
		}
		var blocked bool
		if err := l.conn.QueryRow(ctx, blockedSQL, l.readCur.txid, l.readCur.seq).Scan(&blocked); err != nil {
			return fmt.Errorf("relay: check blocked rows: %w", err)
		}
		if !blocked && !l.idle {
			if err := l.setIdle(ctx, true); err != nil {
				return err
			}
			l.r.idles.Add(1)
			if err := l.conn.QueryRow(ctx, horizonSQL).Scan(&horizon); err != nil {
				return fmt.Errorf("relay: read horizon: %w", err)
			}
			continue
		}
		if !blocked && horizon > 0 {
			var xmin int64
			if err := l.conn.QueryRow(ctx, xminSQL).Scan(&xmin); err != nil {
				return fmt.Errorf("relay: read xmin: %w", err)
			}
			if xmin >= horizon {
				// A writer that missed the flag may have committed since
				// the last read: read once more before sleeping.
				horizon = 0
				continue
			}
		}
		if blocked || horizon > 0 {
			// Rows are committed but wait behind a running transaction, or
			// a writer may have missed that we went idle: both end as soon
			// as short transactions finish, so look again shortly.
			if !sleep(ctx, shortWait) {
				return nil
			}
			shortWait = min(shortWait*2, 5*time.Millisecond)
			continue
		}
		l.r.setAsleep(true)
		err = l.sleep(ctx)
		l.r.setAsleep(false)
		if err != nil {
			return err
		}
		shortWait = time.Millisecond
	}
}

// readAndBookkeep reads the next batch and, in the same round trip, records
// how far the previous batches were acked and deletes rows that are durable
// in the stream.
func (l *leader) readAndBookkeep(ctx context.Context) ([]row, error) {
	b := &pgx.Batch{}
	b.Queue(readSQL, l.readCur.txid, l.readCur.seq, l.r.opt.BatchSize)
	// Persisting waits for a WAL flush, so it is not done every round at
	// low rates: at most BatchSize acked rows or 100 ms go unrecorded, and
	// a new leader's reconcile (3 batches deep) covers them.
	persist := l.cur.after(l.persisted) && (l.unpersist >= l.r.opt.BatchSize || time.Since(l.persistAt) >= 100*time.Millisecond)
	if persist {
		b.Queue(persistCursorSQL, l.cur.txid, l.cur.seq)
	}
	del, acks, doDelete := l.dueForDelete(time.Now())
	if doDelete && l.r.opt.Lake != nil {
		// The lake moves the rows instead, on its own connection.
		l.r.opt.Lake.Move(lake.Range{From: lake.Cursor{TxID: l.deleted.txid, Seq: l.deleted.seq}, To: lake.Cursor{TxID: del.txid, Seq: del.seq}, Acks: acks,
			Fence: lake.Fence{Cond: holdsLeaderLock, Token: int64(l.conn.PgConn().PID())}})
		l.deleted, doDelete = del, false
	}
	if doDelete {
		b.Queue(deleteSQL, l.deleted.txid, l.deleted.seq, del.txid, del.seq)
	}
	br := l.conn.SendBatch(ctx, b)
	rows, err := scanRows(br)
	if err == nil && persist {
		_, err = br.Exec()
	}
	if err == nil && doDelete {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("relay: read outbox: %w", err)
	}
	if persist {
		l.persisted, l.persistAt, l.unpersist = l.cur, time.Now(), 0
	}
	if doDelete {
		l.deleted = del
	}
	if len(l.seen) > 0 {
		rows = l.skipSeen(rows)
	}
	return rows, nil
}

func scanRows(br pgx.BatchResults) ([]row, error) {
	rs, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.at.txid, &r.at.seq, &r.id, &r.subject, &r.payload); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// skipSeen drops rows an earlier leader already published (found in the
// streams at the start of this term) but advances the cursor past them.
func (l *leader) skipSeen(rows []row) []row {
	if len(rows) == 0 {
		return rows
	}
	kept := rows[:0]
	for _, r := range rows {
		if l.seen[r.id] {
			delete(l.seen, r.id)
			// The acked cursor may pass it only if nothing unacked comes
			// before it.
			if len(kept) == 0 && l.pending == nil {
				l.cur = r.at
			}
			continue
		}
		kept = append(kept, r)
	}
	l.readCur = rows[len(rows)-1].at
	if len(kept) == 0 && l.pending == nil {
		l.acked = append(l.acked, ackedAt{at: l.cur, when: time.Now()})
	}
	return kept
}

// dueForDelete returns the newest acked cursor older than the delete delay,
// once the oldest has waited deleteEvery more, and the acks up to it.
func (l *leader) dueForDelete(now time.Time) (cursor, []lake.Ack, bool) {
	if len(l.acked) == 0 || now.Sub(l.acked[0].when) < l.r.opt.DeleteDelay+deleteEvery {
		return cursor{}, nil, false
	}
	var due cursor
	var acks []lake.Ack
	n := 0
	for n < len(l.acked) && now.Sub(l.acked[n].when) >= l.r.opt.DeleteDelay {
		due = l.acked[n].at
		acks = append(acks, l.acked[n].acks...)
		n++
	}
	if n == 0 {
		return cursor{}, nil, false
	}
	l.acked = l.acked[n:]
	return due, acks, due.after(l.deleted)
}

func (l *leader) setIdle(ctx context.Context, idle bool) error {
	// The flag is a hint: losing it in a crash costs nothing, so it need
	// not wait for the WAL flush.
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`UPDATE outbox.relay SET idle = $1, updated_at = now()`, idle)
	b.Queue(`COMMIT`)
	if err := l.conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("relay: set idle=%v: %w", idle, err)
	}
	l.idle = idle
	return nil
}

// sleep waits for a notification, the fallback poll, or the next delete.
func (l *leader) sleep(ctx context.Context) error {
	wait := l.r.opt.PollInterval
	if l.cur.after(l.persisted) {
		wait = min(wait, 100*time.Millisecond) // wake to record the cursor
	}
	if len(l.acked) > 0 {
		wait = min(wait, time.Until(l.acked[0].when.Add(l.r.opt.DeleteDelay+deleteEvery)))
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
	return nil
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
