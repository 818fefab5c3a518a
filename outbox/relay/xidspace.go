package relay

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The outbox orders rows by the txid of the transaction that wrote them, and
// the relay reads only below the oldest running transaction id. Both hold
// only within one cluster's transaction id space. A logical restore
// (pg_dump/pg_restore) or logical migration into another cluster keeps the
// rows and the cursor with their old txids, while new transactions start
// lower: new events would sort below the cursor (never read, the backlog
// showing 0, the next delete removing them), and restored rows above it
// would wait until the new cluster's counter caught up.
//
// Two things make that safe:
//   - outbox.Append raises a row's txid above the cursor's, so a new event
//     never sorts below the cursor, whatever the xid space;
//   - a new leader checks the space before it reads (checkXidSpace). The
//     cursor is foreign if it, or any row, is at or above a transaction id
//     taken now (impossible within one space), or if it was written under
//     another cluster's system_identifier. It then renumbers the outbox
//     (rebase): rows at or below the cursor and older than it (published)
//     to txid 0, the others to txid 1, the cursor between them, and new
//     rows sort above both. Rows keep their seq, and within one key seq order is commit
//     order (writers of a key are serialised, and each inserts after the
//     previous one committed), so per-key order holds. Rows beyond the
//     cursor that were published after pg_dump took its snapshot are found
//     by the reconcile that follows: the stream sequences recorded with the
//     cursor come from the same snapshot.

// xidSpaceSQL reads the cursor and what it must lie below. pg_current_xact_id
// takes an id now, above every id given out so far.
const xidSpaceSQL = `
SELECT c.txid, c.system_identifier, pg_current_xact_id()::text::bigint,
       coalesce((SELECT max(txid) FROM outbox.events), 0)
FROM outbox.relay_cursor c`

const systemIdentifierSQL = `SELECT system_identifier FROM pg_control_system()`

var recordSystemIdentifierSQL = `
UPDATE outbox.relay_cursor SET system_identifier = $1 WHERE ` + fenceOn("$2")

// rebaseSQL renumbers every row: published ones to txid 0, the others to
// txid 1, in seq order within each. Published means at or below the cursor
// and created no later than the cursor was written: a row created after
// cannot have been published, even if it sorts below the cursor (a writer
// without Append's guard, such as an older Cairn, made it).
const rebaseSQL = `
UPDATE outbox.events e
   SET txid = CASE WHEN (e.txid, e.seq) <= (c.txid, c.seq) AND e.created_at <= c.updated_at THEN 0 ELSE 1 END
FROM outbox.relay_cursor c`

// rebaseCursorSQL puts the cursor between the two. It keeps updated_at: the
// time the cursor's rows were published by, which deleteInheritedSQL
// checks.
var rebaseCursorSQL = `
UPDATE outbox.relay_cursor SET txid = 0, seq = $1, system_identifier = $2, token = $3
WHERE ` + fenceOn("$3")

type xidSpace struct {
	cursor, stored, next, maxTxid int64
}

func (s xidSpace) foreign(sysid int64) (bool, string) {
	switch {
	case s.cursor >= s.next:
		return true, fmt.Sprintf("the cursor's txid %d is not below the next transaction id %d", s.cursor, s.next)
	case s.maxTxid >= s.next:
		return true, fmt.Sprintf("an outbox row's txid %d is not below the next transaction id %d", s.maxTxid, s.next)
	case s.stored != 0 && sysid != 0 && s.stored != sysid:
		return true, fmt.Sprintf("the cursor was written by the cluster with system_identifier %d, this is %d", s.stored, sysid)
	}
	return false, ""
}

func readXidSpace(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (xidSpace, error) {
	var s xidSpace
	err := q.QueryRow(ctx, xidSpaceSQL).Scan(&s.cursor, &s.stored, &s.next, &s.maxTxid)
	if err != nil {
		return s, fmt.Errorf("relay: read transaction id space: %w", err)
	}
	return s, nil
}

// checkXidSpace makes sure the cursor and the rows belong to this cluster's
// transaction ids before the term reads anything, and renumbers them if
// not.
func (l *leader) checkXidSpace(ctx context.Context) error {
	sysid, err := l.systemIdentifier(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := l.call(ctx)
	s, err := readXidSpace(cctx, l.conn)
	cancel()
	if err != nil {
		return err
	}
	if foreign, why := s.foreign(sysid); foreign {
		return l.rebase(ctx, sysid, why)
	}
	if sysid != 0 && s.stored != sysid {
		if err := l.exec(ctx, recordSystemIdentifierSQL, sysid, l.term.Token); err != nil {
			return fmt.Errorf("relay: record system identifier: %w", err)
		}
	}
	return nil
}

// systemIdentifier returns the cluster's system_identifier, or 0 where the
// database user may not read it (the txid checks still apply).
func (l *leader) systemIdentifier(ctx context.Context) (int64, error) {
	cctx, cancel := l.call(ctx)
	defer cancel()
	var id int64
	err := l.conn.QueryRow(cctx, systemIdentifierSQL).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("relay: read system identifier: %w", err)
	}
	return id, nil
}

// rebase renumbers the outbox into this cluster's transaction id space. It
// first locks outbox.events against writers (SHARE: reads go on) and waits
// for those in flight, whose rows were given txids in the old numbering;
// writers after it read the new cursor. It checks again under the lock, so
// two leaders cannot renumber twice.
func (l *leader) rebase(ctx context.Context, sysid int64, why string) error {
	l.r.log.Warn("relay: the outbox's transaction ids come from another database (a logical restore?); renumbering it", "why", why)
	// Waiting for writers may take a while: allow the lock wait on top of
	// the usual bound.
	cctx, cancel := context.WithTimeout(ctx, 3*l.r.opt.CallTimeout)
	defer cancel()
	tx, err := l.conn.Begin(cctx)
	if err != nil {
		return fmt.Errorf("relay: rebase: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(cctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, l.r.opt.CallTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("relay: rebase: %w", err)
	}
	if _, err := tx.Exec(cctx, `LOCK TABLE outbox.events IN SHARE MODE`); err != nil {
		return fmt.Errorf("relay: rebase: lock outbox.events: %w", err)
	}
	s, err := readXidSpace(cctx, tx)
	if err != nil {
		return err
	}
	if foreign, _ := s.foreign(sysid); !foreign {
		return tx.Commit(cctx)
	}
	tag, err := tx.Exec(cctx, rebaseSQL)
	if err != nil {
		return fmt.Errorf("relay: rebase: renumber rows: %w", err)
	}
	ctag, err := tx.Exec(cctx, rebaseCursorSQL, int64(math.MaxInt64), sysid, l.term.Token)
	if err != nil {
		return fmt.Errorf("relay: rebase: move cursor: %w", err)
	}
	if ctag.RowsAffected() == 0 {
		return errFenced
	}
	if err := tx.Commit(cctx); err != nil {
		return fmt.Errorf("relay: rebase: commit: %w", err)
	}
	l.r.log.Warn("relay: renumbered the outbox into this database's transaction ids", "rows", tag.RowsAffected())
	return nil
}
