package consumer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// Dead letters are kept for operators, indefinitely, so they never hold a
// secret: the fields the event catalog marks cairn:"secret" (an activation
// token) are replaced by outbox.Redacted before the event is parked, and
// again when dead letters are listed. A retried dead letter therefore
// reaches its handler without the secret; the handler must treat that as
// permanent (the mail module does, and the user asks for a new email).

// parkedPayload is what park stores of a message: its bytes, redacted.
func parkedPayload(raw []byte) []byte {
	out, _ := outbox.RedactEvent(raw)
	return out
}

// redactStoredDeadLetters redacts dead letters parked before redaction
// existed (or before a field was tagged secret). Every replica runs it once
// at start; it is idempotent, and dead letters are few.
func (r *Runtime) redactStoredDeadLetters(ctx context.Context) {
	rows, err := r.pool.Query(ctx, `SELECT id::text, payload FROM inbox.dead_letters`)
	if err != nil {
		r.log.Warn("cannot read dead letters to redact their secrets", "err", err)
		return
	}
	type row struct {
		id      string
		payload []byte
	}
	all, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
		var x row
		return x, cr.Scan(&x.id, &x.payload)
	})
	if err != nil {
		r.log.Warn("cannot read dead letters to redact their secrets", "err", err)
		return
	}
	n := 0
	for _, x := range all {
		out, changed := outbox.RedactEvent(x.payload)
		if !changed {
			continue
		}
		if _, err := r.pool.Exec(ctx, `UPDATE inbox.dead_letters SET payload = $2 WHERE id = $1`, x.id, out); err != nil {
			r.log.Warn("cannot redact a dead letter", "id", x.id, "err", fmt.Errorf("update: %w", err))
			return
		}
		n++
	}
	if n > 0 {
		r.log.Info("redacted secrets in dead letters parked before", "dead_letters", n)
	}
}
