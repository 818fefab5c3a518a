package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// errFenced: the lease has another token now; this replica's term is over,
// and what it was about to commit is rolled back.
var errFenced = errors.New("consumer: lease taken over; nothing committed")

// processed reports whether the consumer handled the event already. A read
// on its own, before any transaction: an event handled already costs no
// transaction.
func (r *Runtime) processed(ctx context.Context, consumer, eventID string) (bool, error) {
	var done bool
	err := r.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.processed WHERE consumer = $1 AND event_id = $2)`,
		consumer, eventID).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("consumer: read inbox: %w", err)
	}
	return done, nil
}

// record inserts (consumer, event id) into the inbox in tx, fenced: only
// while the lease's token is still term's, checked in the same statement
// (no extra round trip). A term that ended before this statement commits
// nothing (errFenced); one that ends between it and the commit cannot
// duplicate an effect either, since the next holder's insert of the same
// row waits for this transaction and then finds the row (errHandledMeanwhile).
// With term nil (an admin retry) the insert is not fenced.
func record(ctx context.Context, tx pgx.Tx, consumer, eventID string, term *lease.Term) error {
	if term == nil {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox.processed (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, consumer, eventID)
		if err != nil {
			return fmt.Errorf("consumer: record in inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errHandledMeanwhile
		}
		return nil
	}
	var held, inserted bool
	err := tx.QueryRow(ctx, `
WITH fence AS (SELECT EXISTS (SELECT 1 FROM outbox.leases WHERE name = $3 AND token = $4) AS held),
     ins AS (INSERT INTO inbox.processed (consumer, event_id) SELECT $1, $2::uuid FROM fence WHERE held
             ON CONFLICT DO NOTHING RETURNING 1)
SELECT held, EXISTS (SELECT 1 FROM ins) FROM fence`, consumer, eventID, term.Name, term.Token).Scan(&held, &inserted)
	switch {
	case err != nil:
		return fmt.Errorf("consumer: record in inbox: %w", err)
	case !held:
		return errFenced
	case !inserted:
		return errHandledMeanwhile
	}
	return nil
}
