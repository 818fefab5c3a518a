package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
)

// Payment is a payment as recorded: the gateway's answer about its id.
type Payment struct {
	ID              string
	Amount          modules.Money
	Status          string // authorized, declined or voided
	AuthorizationID string
	Reason          string
	UpdatedAt       time.Time
}

type store struct{ db modules.DBTX }

func (s store) payment(ctx context.Context, id string) (Payment, bool, error) {
	var p Payment
	err := s.db.QueryRow(ctx, `SELECT id::text, amount, currency, status, authorization_id, reason, updated_at
		FROM payments.payments WHERE id = $1`, id).
		Scan(&p.ID, &p.Amount.Amount, &p.Amount.Currency, &p.Status, &p.AuthorizationID, &p.Reason, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("payments: read payment %s: %w", id, err)
	}
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, true, nil
}

const insertPaymentSQL = `INSERT INTO payments.payments (id, amount, currency, status, authorization_id, reason)
VALUES ($1, $2, $3, $4, $5, $6)`

// insert records a payment unless its id has a row already.
func (s store) insert(ctx context.Context, p Payment) (bool, error) {
	tag, err := s.db.Exec(ctx, insertPaymentSQL+` ON CONFLICT (id) DO NOTHING`,
		p.ID, p.Amount.Amount, p.Amount.Currency, p.Status, p.AuthorizationID, p.Reason)
	if err != nil {
		return false, fmt.Errorf("payments: record payment %s: %w", p.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s store) setVoided(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE payments.payments SET status = 'voided', updated_at = clock_timestamp() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("payments: record void of %s: %w", id, err)
	}
	return nil
}
