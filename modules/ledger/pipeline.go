package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// The ledger is Cairn's write-throughput workload, and on a small machine a
// deposit's cost is mostly round trips to PostgreSQL: each one is a write
// and a read on both sides and wakes a backend and a goroutine. So its
// transactions are pipelined by hand on one pooled connection: BEGIN rides
// in the first batch and COMMIT in the last, which makes a deposit two round
// trips instead of four (BEGIN, update, outbox insert, COMMIT).

// sendTx sends b, a whole transaction from BEGIN to COMMIT, and rolls back
// if any statement in it failed.
func sendTx(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		endTx(ctx, conn)
		return err
	}
	return nil
}

// endTx rolls back the transaction conn still has open, if any: after a
// failed statement it is aborted, and after a refused or replayed request
// it is simply not wanted. A broken connection is left to the pool, which
// discards a connection released inside a transaction.
// The rollback is sent even when ctx is cancelled (a client that hung up
// between the batches), so the connection can go back to the pool.
func endTx(ctx context.Context, conn *pgx.Conn) {
	if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = conn.Exec(rctx, "rollback")
}
