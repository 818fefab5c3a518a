package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox/lease"

	"github.com/cairn-dev/cairn/outbox/lake"
)

type cursor struct{ txid, seq int64 }

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
	acks []lake.Ack // where the round's rows were stored, for the lake
}

// inherited is the part of the outbox an earlier term published: rows up to
// the cursor this term loaded, deleted once after the delete delay.
type inherited struct {
	upTo          cursor
	createdBefore time.Time // when that cursor was written
	due           time.Time
}

// leader is the state of one term, on a connection of its own that also
// listens for writers' notifications.
type leader struct {
	r         *Relay
	conn      *pgx.Conn
	term      *lease.Term
	pub       *publisher
	cur       cursor // last row published and acked (or skipped, or parked)
	readCur   cursor // last row read and submitted (>= cur)
	pending   *round // submitted round whose acks are awaited
	persisted cursor // last cursor written to outbox.relay_cursor
	persistAt time.Time
	unpersist int       // rows acked since
	deleted   cursor    // rows of this term up to here have been deleted
	acked     []ackedAt // acked rounds whose rows are not yet deleted
	inherited *inherited
	seen      map[string]bool   // ids found in the streams, still to be read
	unpassed  int               // ids of seen skipped in rounds not yet acked
	rewinds   map[string]uint64 // reconciles started early (see Relay.rewind)
	chains    map[string]*chain // per stream
	idle      bool              // outbox.relay.idle as last written
	// perMessage makes the next round go out one message at a time even in
	// atomic mode, to find which message a failed batch could not take.
	perMessage bool
}

// lead runs one term: it is called by the lease with a context that ends
// with the term.
func (r *Relay) lead(ctx context.Context, t *lease.Term) error {
	cctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
	conn, err := pgx.ConnectConfig(cctx, r.pool.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return fmt.Errorf("relay: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), r.opt.CallTimeout)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if r.opt.OnTerm != nil {
		cctx, cancel := context.WithTimeout(ctx, r.opt.CallTimeout)
		r.opt.OnTerm(cctx, conn)
		cancel()
	}
	pub, err := newPublisher(r.js.Conn(), t.Token)
	if err != nil {
		return err
	}
	defer pub.close()
	l := &leader{r: r, conn: conn, term: t, pub: pub, perMessage: r.perMessageOnce.Swap(false)}
	r.state.Store(Leader)
	r.log.Info("relay is leader", "name", r.opt.Name, "token", t.Token)
	defer r.state.Store(Standby)
	err = l.start(ctx)
	if err == nil {
		err = l.loop(ctx)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// call bounds one database call or JetStream request of the leader.
func (l *leader) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.r.opt.CallTimeout)
}

func (l *leader) exec(ctx context.Context, sql string, args ...any) error {
	cctx, cancel := l.call(ctx)
	defer cancel()
	_, err := l.conn.Exec(cctx, sql, args...)
	return err
}

// start prepares the term: it checks that the cursor belongs to this
// database's transaction ids, loads it, and reads what the streams hold
// beyond it.
func (l *leader) start(ctx context.Context) error {
	if err := l.exec(ctx, `LISTEN cairn_outbox`); err != nil {
		return fmt.Errorf("relay: listen: %w", err)
	}
	if err := l.exec(ctx, `UPDATE outbox.relay SET leader = $1, updated_at = now()`, l.r.opt.Name); err != nil {
		return fmt.Errorf("relay: record leader: %w", err)
	}
	if err := l.checkXidSpace(ctx); err != nil {
		return err
	}
	var streams map[string]uint64
	var writtenAt time.Time
	cctx, cancel := l.call(ctx)
	err := l.conn.QueryRow(cctx, loadCursorSQL).Scan(&l.cur.txid, &l.cur.seq, &streams, &writtenAt)
	cancel()
	if err != nil {
		return fmt.Errorf("relay: load cursor: %w", err)
	}
	l.persisted, l.persistAt, l.readCur, l.deleted = l.cur, time.Now(), l.cur, l.cur
	// Rows up to the cursor were published by an earlier term; keep them
	// one delete delay longer in case the stream has not synced them yet.
	l.inherited = &inherited{upTo: l.cur, createdBefore: writtenAt, due: time.Now().Add(l.r.opt.DeleteDelay)}
	if err := l.reconcile(ctx, streams); err != nil {
		return err
	}
	return l.setIdle(ctx, false)
}

func (l *leader) loop(ctx context.Context) error {
	var horizon int64 // while idle: writers below it may have missed the flag
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
			next, err := l.submit(ctx, rows)
			if err != nil {
				return err
			}
			// Wait for the previous round only now, so reading and
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
		next, err := l.sleepCheck(ctx, &horizon)
		if err != nil {
			return err
		}
		switch next {
		case readAgain:
			continue
		case waitShort:
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

const (
	// idlePoll is the leader's poll step while it waits IdleAfter before
	// going idle.
	idlePoll = time.Millisecond
	// deleteEvery groups the deletes of published rows: one per read was
	// 130 DELETE statements a second at 2,000 deposits/s.
	deleteEvery = 100 * time.Millisecond
)

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
