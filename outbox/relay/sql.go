package relay

import "fmt"

// readSQL returns the next rows after the cursor, only from transactions
// older than the oldest one still running: a transaction that got an earlier
// id but commits later is still invisible now, and reading past it by id
// alone would skip it for ever (the bigserial trap watermill-sql documents).
const readSQL = `
SELECT txid, seq, event_id::text, subject, payload
FROM outbox.events
WHERE (txid, seq) > ($1, $2)
  AND txid < (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)
ORDER BY txid, seq
LIMIT $3`

// blockedSQL tells whether committed rows wait behind a running transaction.
// Written as a LIMIT 1 subquery, not EXISTS: the planner drops ORDER BY and
// LIMIT inside EXISTS and then chose a sequential scan over dead rows.
const blockedSQL = `SELECT (SELECT true FROM outbox.events WHERE (txid, seq) > ($1, $2) ORDER BY txid, seq LIMIT 1) IS NOT NULL`

// horizonSQL is the id the next transaction will get; every transaction
// that could have read relay.idle = false before it was set is below it.
const horizonSQL = `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`

const xminSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

const loadCursorSQL = `SELECT txid, seq FROM outbox.relay_cursor`

const persistCursorSQL = `UPDATE outbox.relay_cursor SET txid = $1, seq = $2, updated_at = now()`

// deleteSQL has a lower bound (what was deleted last) so the index scan does
// not walk every dead entry since the last vacuum: unbounded, it grew to
// 100k+ rows visited per delete and to 100 ms under load.
const deleteSQL = `DELETE FROM outbox.events WHERE (txid, seq) > ($1, $2) AND (txid, seq) <= ($3, $4)`

// backlogSQL counts what the leader has not yet published, by the cursor it
// last persisted, so any replica can answer it.
const backlogSQL = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(e.created_at)), 0)::float8
FROM outbox.events e, outbox.relay_cursor c
WHERE (e.txid, e.seq) > (c.txid, c.seq)`

// holdsLeaderLock fences the lake's moves, which run on a connection of
// their own: the backend whose pid is param must still hold the leader's
// advisory lock (a bigint key is classid = high 32 bits, objid = low 32).
func holdsLeaderLock(param string) string {
	return `EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND classid = ` + fmt.Sprint(uint64(lockKey)>>32) + ` AND objid = ` + fmt.Sprint(uint64(lockKey)&0xffffffff) + `
		AND pid = ` + param + `::int)`
}
