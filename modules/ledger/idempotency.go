package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// An Idempotency-Key is remembered for the module's retention
// (CAIRN_IDEMPOTENCY_RETENTION, 24 hours by default, as Stripe does), and
// then forgotten: a request that comes with it later is a new request. A
// key past its retention counts as forgotten at once, whether or not the
// sweep has deleted its row yet, so the answer does not depend on when the
// sweep last ran.

// sweepBatch is how many expired keys one sweep statement deletes: small
// enough that each is a short transaction, large enough that a backlog
// (the keys of a busy day) goes in a few hundred statements.
const sweepBatch = 1000

// sweepSQL deletes up to $2 keys older than $1, oldest first. It says
// = ANY(ARRAY(...)) rather than IN (...): the planner then looks the batch
// up by primary key, where with IN it hashed the batch against a scan of
// the whole table, every batch (TestSweepIsIndexed).
const sweepSQL = `DELETE FROM ledger.idempotency_keys WHERE key = ANY(ARRAY(
	SELECT key FROM ledger.idempotency_keys WHERE created_at < now() - $1::interval
	ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED))`

// idempotencyClaim is what queueClaimIdempotencyKey learns of a key.
type idempotencyClaim struct {
	claimed     bool   // this request recorded the key
	response    []byte // otherwise the first request's response
	requestHash []byte // and the hash of its request
}

// queueClaimIdempotencyKey queues recording the key for this request, which
// waits for a concurrent request with the same key to finish first, then
// the key's row: the first request's response when the key was used
// before. A key older than retention is claimed afresh, as if it were new.
func queueClaimIdempotencyKey(b *pgx.Batch, key string, hash []byte, retention time.Duration, c *idempotencyClaim) {
	b.Queue(`INSERT INTO ledger.idempotency_keys AS k (key, request_hash) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL, response = NULL, created_at = now()
		WHERE k.created_at < now() - $3::interval`, key, hash, retention).
		Exec(func(tag pgconn.CommandTag) error {
			c.claimed = tag.RowsAffected() == 1
			return nil
		})
	b.Queue(`SELECT response, request_hash FROM ledger.idempotency_keys WHERE key = $1`, key).
		QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&c.response, &c.requestHash); err != nil {
				return fmt.Errorf("ledger: read idempotency key: %w", err)
			}
			return nil
		})
}

func queueSaveIdempotentResponse(b *pgx.Batch, key string, status int, response []byte) {
	b.Queue(`UPDATE ledger.idempotency_keys SET status = $2, response = $3 WHERE key = $1`, key, status, response)
}

// ForgetExpiredKeys deletes the idempotency keys older than the retention,
// oldest first, in batches of sweepBatch (each its own short transaction,
// found through the index on created_at), and returns how many it deleted.
// Replicas may sweep at once: a key another sweep or a request holds is
// skipped, not waited for.
func (m *Module) ForgetExpiredKeys(ctx context.Context) (int64, error) {
	var total int64
	for {
		tag, err := m.pool.Exec(ctx, sweepSQL, m.keyRetention, sweepBatch)
		if err != nil {
			return total, fmt.Errorf("ledger: forget expired idempotency keys: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < sweepBatch {
			return total, nil
		}
	}
}

// Run sweeps expired idempotency keys until ctx ends: at start, then every
// tenth of the retention, at most every ten minutes. A failed sweep is
// logged and tried again at the next tick.
func (m *Module) Run(ctx context.Context) error {
	every := min(m.keyRetention/10, 10*time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		n, err := m.ForgetExpiredKeys(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			m.log.Warn("sweeping expired idempotency keys failed; trying again later", "err", err, "in", every)
		case n > 0:
			m.log.Info("forgot expired idempotency keys", "keys", n, "retention", m.keyRetention)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
