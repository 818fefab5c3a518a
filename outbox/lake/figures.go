package lake

import (
	"context"
	"fmt"
)

// unmovedSQL counts the outbox rows at or below the relay's persisted
// cursor: published, and not yet moved into the lake. A range of the
// outbox's primary key, so it costs what the rows waiting cost.
const unmovedSQL = `SELECT count(*) FROM outbox.events e, outbox.relay_cursor c
WHERE (e.txid, e.seq) <= (c.txid, c.seq)`

// Unmoved returns the number of published events not yet in the lake,
// for /metrics. Rows wait in the outbox until JetStream has fsynced them
// (the relay's delete delay, two NATS sync intervals and a second) and
// then for the mover; a figure that keeps growing means the mover is not
// moving. Errors: the database's.
func (m *Mover) Unmoved(ctx context.Context) (int64, error) {
	var n int64
	if err := m.pool.QueryRow(ctx, unmovedSQL).Scan(&n); err != nil {
		return 0, fmt.Errorf("lake: count unmoved events: %w", err)
	}
	return n, nil
}
