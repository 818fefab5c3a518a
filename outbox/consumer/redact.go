package consumer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// Dead letters are kept indefinitely, so they never hold a secret in
// clear: the fields the event catalog marks cairn:"secret" (an activation
// token) are sealed (outbox.Sealer: AES-256-GCM under a key that is not in
// the database) before the event is parked. Operators never see them:
// listings, the console and the admin API show outbox.Redacted. A retry
// opens them before the handler runs, so an email parked while the SMTP
// server was down can be sent once it is back. A dead letter sealed under
// another key (another replica's or an earlier run's random key, when
// CAIRN_SECRET_KEY is not set) reaches its handler with outbox.Redacted,
// which the handler must treat as permanent.

// parkedPayload is what park stores of a message: its bytes, sealed.
func (r *Runtime) parkedPayload(raw []byte) []byte {
	out, _ := r.opt.Sealer.SealEvent(raw)
	return out
}

// shownPayload is a dead letter's payload as operators see it.
func shownPayload(stored []byte) []byte {
	out, _ := outbox.RedactEvent(stored)
	return out
}

// unsealForRetry opens a dead letter's sealed fields for its handler.
func (r *Runtime) unsealForRetry(id string, stored []byte) []byte {
	out, unopened := r.opt.Sealer.UnsealEvent(stored)
	if unopened > 0 {
		r.log.Warn("a dead letter's secret fields were sealed under another key; its handler gets them redacted "+
			"(set the same CAIRN_SECRET_KEY on every replica to retry on any of them)", "id", id, "fields", unopened)
	}
	return out
}

// sealStoredDeadLetters seals the secret fields of dead letters parked in
// clear before sealing existed (or before a field was tagged secret).
// Every replica runs it once at start; it is idempotent (sealed and
// redacted values are left alone), and dead letters are few.
func (r *Runtime) sealStoredDeadLetters(ctx context.Context) {
	rows, err := r.pool.Query(ctx, `SELECT id::text, payload FROM inbox.dead_letters`)
	if err != nil {
		r.log.Warn("cannot read dead letters to seal their secrets", "err", err)
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
		r.log.Warn("cannot read dead letters to seal their secrets", "err", err)
		return
	}
	n := 0
	for _, x := range all {
		out, changed := r.opt.Sealer.SealEvent(x.payload)
		if !changed {
			continue
		}
		if _, err := r.pool.Exec(ctx, `UPDATE inbox.dead_letters SET payload = $2 WHERE id = $1 AND payload = $3`, x.id, out, x.payload); err != nil {
			r.log.Warn("cannot seal a dead letter", "id", x.id, "err", fmt.Errorf("update: %w", err))
			return
		}
		n++
	}
	if n > 0 {
		r.log.Info("sealed secrets in dead letters parked before", "dead_letters", n)
	}
}
