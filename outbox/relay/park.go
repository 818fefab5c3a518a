package relay

import (
	"context"
	"fmt"
)

// parkSQL moves one row to outbox.parked, if the term still holds.
var parkSQL = `
WITH moved AS (
    DELETE FROM outbox.events WHERE txid = $1 AND seq = $2 AND ` + fenceOn("$4") + `
    RETURNING event_id, txid, seq, key, subject, payload, created_at)
INSERT INTO outbox.parked (event_id, txid, seq, key, subject, payload, created_at, reason)
SELECT event_id, txid, seq, key, subject, payload, created_at, $3 FROM moved`

// park moves an event the server will never accept out of the outbox, so
// that it cannot hold up every later event. Later events of its key are
// then published without it: consumers see a gap in that key's history
// (the event is in outbox.parked, logged at ERROR and counted in the
// relay's status), rather than nothing more of any key.
func (l *leader) park(ctx context.Context, rw row, reason string) error {
	cctx, cancel := l.call(ctx)
	defer cancel()
	tag, err := l.conn.Exec(cctx, parkSQL, rw.at.txid, rw.at.seq, reason, l.term.Token)
	if err != nil {
		return fmt.Errorf("relay: park event %s: %w", rw.id, err)
	}
	if tag.RowsAffected() == 0 {
		return errFenced
	}
	l.r.parked.Add(1)
	l.r.log.Error("relay parked an event it can never publish; later events of its key go out without it",
		"event_id", rw.id, "subject", rw.subject, "bytes", len(rw.payload), "reason", reason)
	return nil
}

// parkOversized parks the rows bigger than the connected server accepts
// (outbox.Append refuses them, but the server's limit may have changed
// since) and returns the others.
func (l *leader) parkOversized(ctx context.Context, rows []row) ([]row, error) {
	limit := l.r.js.Conn().MaxPayload()
	if limit <= 0 {
		return rows, nil
	}
	kept := rows[:0]
	for _, rw := range rows {
		if size := int64(len(rw.payload) + relayHeaderBytes); size > limit {
			reason := fmt.Sprintf("%d bytes with headers, more than the NATS server's max_payload of %d", size, limit)
			if err := l.park(ctx, rw, reason); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, rw)
	}
	return kept, nil
}
