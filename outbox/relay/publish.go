package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
)

type inflight struct {
	rows    []row
	futures []jetstream.PubAckFuture
}

// submit sends a batch asynchronously and moves the read cursor past it.
func (l *leader) submit(rows []row) (*inflight, error) {
	r := l.r
	futures := make([]jetstream.PubAckFuture, len(rows))
	for i, rw := range rows {
		msg := &nats.Msg{Subject: rw.subject, Data: rw.payload, Header: nats.Header{jetstream.MsgIDHeader: []string{rw.id}}}
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			r.publishErrors.Add(1)
			return nil, fmt.Errorf("relay: publish %s: %w", rw.subject, err)
		}
		futures[i] = f
	}
	if last := rows[len(rows)-1].at; last.after(l.readCur) {
		l.readCur = last
	}
	return &inflight{rows: rows, futures: futures}, nil
}

// await waits for every ack of a submitted batch; only then does the cursor
// move.
func (l *leader) await(ctx context.Context, in *inflight) error {
	r := l.r
	timer := time.NewTimer(r.opt.AckTimeout)
	defer timer.Stop()
	var acks []lake.Ack
	if r.opt.Lake != nil {
		acks = make([]lake.Ack, 0, len(in.futures))
	}
	for i, f := range in.futures {
		select {
		case a := <-f.Ok():
			if acks != nil {
				acks = append(acks, lake.Ack{ID: in.rows[i].id, Stream: a.Stream, Seq: a.Sequence})
			}
		case err := <-f.Err():
			r.publishErrors.Add(1)
			return fmt.Errorf("relay: publish %s (event %s): %w", in.rows[i].subject, in.rows[i].id, err)
		case <-timer.C:
			r.publishErrors.Add(1)
			return errAckTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.cur = in.rows[len(in.rows)-1].at
	l.unpersist += len(in.rows)
	l.acked = append(l.acked, ackedAt{at: l.cur, when: time.Now(), acks: acks})
	r.published.Add(uint64(len(in.rows)))
	return nil
}

// reconcileDepth is how many of each stream's newest messages a new leader
// checks: the persisted cursor lags the last acked batch by at most one
// batch, and at most one more batch may be in flight.
func (r *Relay) reconcileDepth() uint64 { return uint64(3 * r.opt.BatchSize) }

// recentlyPublished returns the event ids among the newest messages of both
// streams, so a new leader does not publish again what the last one sent
// after it last persisted its cursor — even if that was longer ago than the
// duplicate window.
func (r *Relay) recentlyPublished(ctx context.Context) (map[string]bool, error) {
	seen := make(map[string]bool)
	for _, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		s, err := r.js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("relay: stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("relay: stream %s info: %w", name, err)
		}
		last, first := info.State.LastSeq, info.State.FirstSeq
		for seq := last; seq >= first && seq > 0 && last-seq < r.reconcileDepth(); seq-- {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("relay: stream %s message %d: %w", name, seq, err)
			}
			if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
				seen[id] = true
			}
		}
	}
	return seen, nil
}
