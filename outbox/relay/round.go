package relay

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// submit sends the rows of one read: rows the streams already hold (found
// by reconcile) are skipped, rows the server could never take are parked,
// the rest go out along the chains. It publishes nothing unless the term is
// still valid.
func (l *leader) submit(ctx context.Context, rows []row) (*round, error) {
	if err := l.term.Check(); err != nil {
		return nil, err
	}
	rd := &round{through: rows[len(rows)-1].at, nrows: len(rows), done: make(chan struct{})}
	for _, rw := range rows {
		if l.seen[rw.id] {
			delete(l.seen, rw.id)
			rd.skipped++
			continue
		}
		rd.msgs = append(rd.msgs, rw)
	}
	l.unpassed += rd.skipped
	msgs, err := l.parkOversized(ctx, rd.msgs)
	if err != nil {
		return nil, err
	}
	rd.msgs = msgs
	l.readCur = rd.through
	if len(rd.msgs) == 0 {
		rd.finish()
		return rd, nil
	}
	rd.atomic = l.r.opt.AtomicBatches && !l.perMessage
	l.perMessage = false
	// The term may have ended while parking; check again just before.
	if err := l.term.Check(); err != nil {
		return nil, err
	}
	rd.sent = time.Now()
	if err := l.pub.send(rd, l.chains, l.r.opt.AckTimeout); err != nil {
		l.r.publishErrors.Add(1)
		return nil, err
	}
	traceSend(rd)
	return rd, nil
}

// await waits for every ack of a submitted round; only then does the
// cursor move.
func (l *leader) await(ctx context.Context, rd *round) error {
	if len(rd.expects) > 0 {
		timer := time.NewTimer(time.Until(rd.deadline))
		defer timer.Stop()
		select {
		case <-rd.done:
		case <-timer.C:
			l.pub.abandon(rd)
			l.r.publishErrors.Add(1)
			return errAckTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if k, err := l.pub.result(rd); err != nil {
		l.r.publishErrors.Add(1)
		return l.failed(ctx, rd, k, err)
	}
	l.cur = rd.through
	l.unpassed -= rd.skipped
	l.unpersist += rd.nrows
	l.acked = append(l.acked, ackedAt{at: l.cur, when: time.Now(), acks: l.lakeAcks(rd)})
	for _, e := range rd.expects {
		if c := l.chains[e.stream]; c != nil && e.seq > c.safe {
			c.safe = e.seq
		}
	}
	l.r.published.Add(uint64(len(rd.msgs)))
	if h := l.r.opt.OnPublished; h != nil && len(rd.msgs) > 0 {
		h(len(rd.msgs), time.Since(rd.sent))
	}
	return nil
}

// failed handles a round that a stream refused: a message the server will
// never take is parked; in every case the term starts over from what was
// acked, because the chains are broken.
func (l *leader) failed(ctx context.Context, rd *round, k int, err error) error {
	e := rd.expects[k]
	m := rd.msgs[e.msg]
	if rd.dupAt > 0 {
		l.r.rewind(rd.dupIn, rd.dupAt)
	}
	switch {
	case neverAccepted(err) && !rd.atomic:
		if perr := l.park(ctx, m, err.Error()); perr != nil {
			return errors.Join(err, perr)
		}
		return fmt.Errorf("relay: event %s parked (%w); starting again from the last acked row", m.id, err)
	case rd.atomic && !chainError(err):
		// An atomic batch is refused whole and does not say which message
		// failed: publish the next round one message at a time to find it.
		l.r.perMessageOnce.Store(true)
	}
	return fmt.Errorf("relay: publish %s (event %s): %w", m.subject, m.id, err)
}

// chainError reports errors that say only that the chain is broken or the
// stream unreachable, not that a message is bad.
func chainError(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.ErrCode == errCodeWrongLastSeq
	}
	return true
}
