package relay

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

// setIdleSQL is sent as one pipeline: the flag is a hint, so its commit need
// not wait for the WAL flush. With idle = true, the last statement takes a
// transaction id of its own after the flag committed: every writer that
// read the flag before it was set took its id earlier, so once no
// transaction below that id runs, every such writer has finished (see
// leader.sleepCheck).
var setIdleSQL = [...]string{
	`BEGIN`,
	`SET LOCAL synchronous_commit = off`,
	`UPDATE outbox.relay SET idle = $1, updated_at = now()`,
	`COMMIT`,
}

const horizonSQL = `SELECT pg_current_xact_id()::text::bigint`

const xminSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

const loadCursorSQL = `SELECT txid, seq, streams, updated_at FROM outbox.relay_cursor`

// persistCursorSQL records how far this term has published; it updates no
// row if the term was fenced.
var persistCursorSQL = `
UPDATE outbox.relay_cursor SET txid = $1, seq = $2, streams = $3, token = $4, updated_at = now()
WHERE ` + fenceOn("$4")

// deleteSQL has a lower bound (what was deleted last) so the index scan does
// not walk every dead entry since the last vacuum: unbounded, it grew to
// 100k+ rows visited per delete and to 100 ms under load. It covers only
// rows between two cursors this term acked.
var deleteSQL = `
DELETE FROM outbox.events WHERE (txid, seq) > ($1, $2) AND (txid, seq) <= ($3, $4)
  AND ` + fenceOn("$5")

// deleteInheritedSQL removes the rows an earlier term published up to the
// cursor this term started from, but none created after that cursor was
// written: a row that sorts below the cursor yet is newer than it cannot
// have been published (only a foreign xid space, see xidspace.go, makes
// one, and then it must not go).
var deleteInheritedSQL = `
DELETE FROM outbox.events WHERE (txid, seq) <= ($1, $2) AND created_at <= $3
  AND ` + fenceOn("$4")

// backlogSQL counts what the leader has not yet published, by the cursor it
// last persisted, so any replica can answer it; and the parked events.
const backlogSQL = `
SELECT count(*), coalesce(extract(epoch FROM now() - min(e.created_at)), 0)::float8,
       (SELECT count(*) FROM outbox.parked)
FROM outbox.events e, outbox.relay_cursor c
WHERE (e.txid, e.seq) > (c.txid, c.seq)`

// fenceOn makes a write conditional on this term's lease token (param is
// its placeholder). FOR SHARE orders the write with a takeover: a standby's
// acquire waits for the write to commit, or the write, having waited for
// the acquire, finds the new token and does nothing.
func fenceOn(param string) string {
	return `EXISTS (SELECT 1 FROM outbox.leases WHERE name = 'relay' AND token = ` + param + ` FOR SHARE)`
}
