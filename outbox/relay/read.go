package relay

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/outbox/lake"
)

// readAndBookkeep reads the next batch and, in the same round trip, records
// how far the previous rounds were acked and deletes rows that are durable
// in the stream. Every write carries the term's token.
func (l *leader) readAndBookkeep(ctx context.Context) ([]row, error) {
	now := time.Now()
	b := &pgx.Batch{}
	b.Queue(readSQL, l.readCur.txid, l.readCur.seq, l.r.opt.BatchSize)
	// Persisting waits for a WAL flush, so it is not done every round at
	// low rates: at most BatchSize acked rows or 100 ms go unrecorded, and
	// a new leader's reconcile covers them.
	persist := l.cur.after(l.persisted) && (l.unpersist >= l.r.opt.BatchSize || now.Sub(l.persistAt) >= 100*time.Millisecond)
	if persist {
		b.Queue(persistCursorSQL, l.cur.txid, l.cur.seq, l.persistStreams(), l.term.Token)
	}
	del, acks, doDelete := l.dueForDelete(now)
	inh := l.inherited
	if inh != nil && now.Before(inh.due) {
		inh = nil
	}
	if lk := l.r.opt.Lake; lk != nil {
		// The lake moves the rows instead of deleting them, on its own
		// connection, in the order of these calls and fenced by this
		// term's token, as the deletes are.
		fence := lake.Fence{Cond: fenceOn, Token: l.term.Token}
		if inh != nil {
			lk.Move(lake.Range{From: lake.Cursor{TxID: math.MinInt64}, To: lakeCursor(inh.upTo), CreatedBefore: inh.createdBefore, Fence: fence})
			l.inherited, inh = nil, nil
		}
		if doDelete {
			lk.Move(lake.Range{From: lakeCursor(l.deleted), To: lakeCursor(del), Acks: acks, Fence: fence})
			l.deleted, doDelete = del, false
		}
	}
	if doDelete {
		b.Queue(deleteSQL, l.deleted.txid, l.deleted.seq, del.txid, del.seq, l.term.Token)
	}
	if inh != nil {
		b.Queue(deleteInheritedSQL, inh.upTo.txid, inh.upTo.seq, inh.createdBefore, l.term.Token)
	}
	cctx, cancel := l.call(ctx)
	defer cancel()
	br := l.conn.SendBatch(cctx, b)
	rows, err := scanRows(br)
	if err == nil && persist {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			err = errFenced
		}
	}
	if err == nil && doDelete {
		_, err = br.Exec()
	}
	if err == nil && inh != nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("relay: read outbox: %w", err)
	}
	if persist {
		l.persisted, l.persistAt, l.unpersist = l.cur, now, 0
		l.forgetRewinds()
	}
	if doDelete {
		l.deleted = del
	}
	if inh != nil {
		l.inherited = nil
	}
	if l.r.opt.AtomicBatches {
		rows = wholeTransactions(rows, l.r.opt.BatchSize)
	}
	return rows, nil
}

// wholeTransactions drops the rows of the last transaction of a full batch
// unless the batch holds nothing else, so that a batch carries whole
// transactions (an atomic batch then gives consumers a transaction's
// events all at once). Rows share a txid when their transactions were
// ordered behind one another (see outbox.Append), which only widens the
// group.
func wholeTransactions(rows []row, batchSize int) []row {
	if len(rows) < batchSize {
		return rows
	}
	last := rows[len(rows)-1].at.txid
	i := len(rows)
	for i > 0 && rows[i-1].at.txid == last {
		i--
	}
	if i == 0 {
		return rows
	}
	return rows[:i]
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

// lakeAcks are where a round's rows were stored, from their publish acks,
// when there is a lake to tell. An atomic batch is acked once, for its last
// message, so its rows are left for the lake to look up.
func (l *leader) lakeAcks(rd *round) []lake.Ack {
	if l.r.opt.Lake == nil || rd.atomic {
		return nil
	}
	acks := make([]lake.Ack, 0, len(rd.expects))
	for _, e := range rd.expects {
		acks = append(acks, lake.Ack{ID: rd.msgs[e.msg].id, Stream: e.stream, Seq: e.seq})
	}
	return acks
}

func lakeCursor(c cursor) lake.Cursor { return lake.Cursor{TxID: c.txid, Seq: c.seq} }

// persistStreams is the stream sequence to record with the cursor, for
// each stream: every message up to it has its row at or below the cursor,
// so the next leader need read only what follows.
func (l *leader) persistStreams() map[string]uint64 {
	out := make(map[string]uint64, len(l.chains))
	for name, c := range l.chains {
		if len(l.seen) > 0 || l.unpassed > 0 {
			// Messages found by this term's reconcile are not all passed
			// by the cursor yet (some are skipped in rounds still
			// awaiting acks): the next leader must read them again.
			out[name] = c.from - 1
		} else {
			out[name] = c.safe
		}
	}
	return out
}
