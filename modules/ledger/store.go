package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

func queueInsertAccount(b *pgx.Batch, a Account) {
	b.Queue(`INSERT INTO ledger.accounts (id, owner, currency, balance, version, opened_at, updated_at)
		VALUES ($1, $2, $3, 0, 0, $4, $4)`, a.ID, a.Owner, a.Currency, a.OpenedAt)
}

func queueInsertEntry(b *pgx.Batch, accountID string, e Entry) {
	b.Queue(`INSERT INTO ledger.entries (account_id, version, type, amount, balance_after, occurred_at, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, accountID, e.Version, e.Type, e.Amount, e.Balance, e.OccurredAt, e.EventID)
}

// queueMove queues the signed amount's update under the row lock and the
// log entry's insert, as one statement, applied only if the balance stays
// within [0, MaxInt64] and, with an idempotency key, only if this request
// claimed it (a key row without a response is this transaction's own claim:
// a committed one always has its response); *moved says whether it was.
// The time is never earlier than the account's last change, so as_of
// queries see one account's history in version order.
func queueMove(b *pgx.Batch, accountID, kind string, delta, amount int64, eventID, key string, m *Movement, moved *bool) {
	var ownKey *string
	if key != "" {
		ownKey = &key
	}
	b.Queue(`WITH moved AS (
		UPDATE ledger.accounts
		SET balance = balance + $2::bigint, version = version + 1, updated_at = greatest(clock_timestamp(), updated_at)
		WHERE id = $1 AND balance + least($2::bigint, 0) >= 0 AND balance <= $3::bigint - greatest($2::bigint, 0)
		  AND ($7::text IS NULL OR EXISTS (SELECT 1 FROM ledger.idempotency_keys k WHERE k.key = $7 AND k.response IS NULL))
		RETURNING id, balance, version, currency, updated_at
	), logged AS (
		INSERT INTO ledger.entries (account_id, version, type, amount, balance_after, occurred_at, event_id)
		SELECT id, version, $4, $5, balance, updated_at, $6 FROM moved
	)
	SELECT balance, version, currency, updated_at FROM moved`, accountID, delta, int64(math.MaxInt64), kind, amount, eventID, ownKey,
	).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&m.Balance, &m.Version, &m.Currency, &m.OccurredAt)
		if errors.Is(err, pgx.ErrNoRows) {
			*moved = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("ledger: update balance: %w", err)
		}
		m.AccountID, *moved = accountID, true
		return nil
	})
}

func (s store) account(ctx context.Context, id string) (Account, error) {
	var a Account
	err := s.db.QueryRow(ctx, `SELECT id::text, owner, currency, balance, version, opened_at FROM ledger.accounts WHERE id = $1`, id).
		Scan(&a.ID, &a.Owner, &a.Currency, &a.Balance, &a.Version, &a.OpenedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("ledger: read account: %w", err)
	}
	return a, nil
}

// stateAt returns the balance and version of the last entry at or before t.
func (s store) stateAt(ctx context.Context, id string, t time.Time) (balance, version int64, err error) {
	err = s.db.QueryRow(ctx, `SELECT balance_after, version FROM ledger.entries
		WHERE account_id = $1 AND occurred_at <= $2 ORDER BY version DESC LIMIT 1`, id, t).Scan(&balance, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, ErrNotYetOpened
	}
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: read history: %w", err)
	}
	return balance, version, nil
}

func (s store) entries(ctx context.Context, id string, afterVersion int64, limit int) ([]Entry, error) {
	rows, err := s.db.Query(ctx, `SELECT version, type, amount, balance_after, occurred_at, event_id::text
		FROM ledger.entries WHERE account_id = $1 AND version > $2 ORDER BY version LIMIT $3`, id, afterVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Version, &e.Type, &e.Amount, &e.Balance, &e.OccurredAt, &e.EventID)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: read entries: %w", err)
	}
	return out, nil
}
