package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// reconcileDepth is how many of a stream's newest messages a new leader
// reads when the cursor records no sequence for it (a cursor written before
// sequences were recorded, or a stream that was recreated).
func (r *Relay) reconcileDepth() uint64 { return uint64(3 * r.opt.BatchSize) }

// reconcile reads, in each stream, the messages published after the
// persisted cursor (those after the sequence recorded with it): an earlier
// term may have published them after it last persisted, or sent them just
// before it ended. Their ids that are still waiting in the outbox become
// l.seen, skipped instead of published again. Each stream's chain starts at
// its last sequence. One headers-only ordered consumer per stream reads them
// as a stream of messages, not one request each.
func (l *leader) reconcile(ctx context.Context, persisted map[string]uint64) error {
	began := time.Now()
	l.chains = make(map[string]*chain, 2)
	l.rewinds = map[string]uint64{}
	var ids []string
	for _, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		c, got, err := l.readTail(ctx, name, persisted[name])
		if err != nil {
			return err
		}
		l.chains[name] = c
		ids = append(ids, got...)
	}
	seen, err := l.stillWaiting(ctx, ids)
	if err != nil {
		return err
	}
	l.seen = seen
	l.r.log.Info("relay reconciled", "read", len(ids), "to_skip", len(seen), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// readTail returns the stream's chain and the message ids after sequence
// after (or of its newest messages if after is unknown).
func (l *leader) readTail(ctx context.Context, name string, after uint64) (*chain, []string, error) {
	cctx, cancel := l.call(ctx)
	defer cancel()
	s, err := l.r.js.Stream(cctx, name)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: stream %s: %w", name, err)
	}
	info, err := s.Info(cctx)
	if err != nil {
		return nil, nil, fmt.Errorf("relay: stream %s info: %w", name, err)
	}
	last, first := info.State.LastSeq, max(info.State.FirstSeq, 1)
	from := after + 1
	if after == 0 || after > last {
		from = first
		if depth := l.r.reconcileDepth(); last >= depth && last-depth+1 > from {
			from = last - depth + 1
		}
	}
	if back := l.r.rewound(name); back > 0 && back < from {
		from = max(back, first)
		l.rewinds[name] = back
	}
	c := &chain{last: last, from: from, safe: last}
	if info.State.Msgs == 0 || from > last {
		return c, nil, nil
	}
	oc, err := s.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		HeadersOnly:       true,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("relay: read stream %s from %d: %w", name, from, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return nil, nil, fmt.Errorf("relay: read stream %s from %d: %w", name, from, err)
	}
	defer it.Stop()
	// The read may be long after a long outage: bound it by the call
	// timeout per message, not overall.
	var ids []string
	for {
		mctx, cancel := l.call(ctx)
		m, err := it.Next(jetstream.NextContext(mctx))
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("relay: read stream %s from %d: %w", name, from, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, nil, fmt.Errorf("relay: stream %s message metadata: %w", name, err)
		}
		if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" {
			ids = append(ids, id)
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			break
		}
	}
	return c, ids, nil
}

// stillWaitingSQL keeps the ids whose rows are still in the outbox beyond
// the cursor: those the relay will read again and must skip.
const stillWaitingSQL = `
SELECT e.event_id::text FROM outbox.events e, outbox.relay_cursor c
WHERE e.event_id = ANY($1::uuid[]) AND (e.txid, e.seq) > (c.txid, c.seq)`

func (l *leader) stillWaiting(ctx context.Context, ids []string) (map[string]bool, error) {
	valid := ids[:0]
	for _, id := range ids {
		if _, err := uuid.Parse(id); err == nil {
			valid = append(valid, id)
		}
	}
	seen := map[string]bool{}
	if len(valid) == 0 {
		return seen, nil
	}
	cctx, cancel := l.call(ctx)
	defer cancel()
	rs, err := l.conn.Query(cctx, stillWaitingSQL, valid)
	if err != nil {
		return nil, fmt.Errorf("relay: look up reconciled ids: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("relay: look up reconciled ids: %w", err)
		}
		seen[id] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("relay: look up reconciled ids: %w", err)
	}
	return seen, nil
}

// rewind makes the next term's reconcile of stream start at seq or earlier:
// a publish was acked as a duplicate stored there, below where the chain
// expected it, so the stream holds a message the reconcile did not see.
func (r *Relay) rewind(stream string, seq uint64) {
	r.rewindMu.Lock()
	defer r.rewindMu.Unlock()
	if r.rewindTo == nil {
		r.rewindTo = map[string]uint64{}
	}
	if cur, ok := r.rewindTo[stream]; !ok || seq < cur {
		r.rewindTo[stream] = seq
	}
}

// rewound returns where the next reconcile of stream must start, or 0. It
// holds until a term that started there has persisted its cursor (see
// forgetRewinds): a term may fail on another stream first.
func (r *Relay) rewound(stream string) uint64 {
	r.rewindMu.Lock()
	defer r.rewindMu.Unlock()
	return r.rewindTo[stream]
}

// forgetRewinds drops the rewinds this term reconciled from, once it has
// persisted a cursor: the sequences recorded with it are then right again.
func (l *leader) forgetRewinds() {
	if len(l.rewinds) == 0 {
		return
	}
	l.r.rewindMu.Lock()
	defer l.r.rewindMu.Unlock()
	for stream, seq := range l.rewinds {
		if l.r.rewindTo[stream] == seq {
			delete(l.r.rewindTo, stream)
		}
	}
	l.rewinds = nil
}
