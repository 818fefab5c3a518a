package inventory

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

func (s store) insert(ctx context.Context, it Item) error {
	_, err := s.db.Exec(ctx, `INSERT INTO inventory.items (sku, name, unit_price, currency, on_hand, version)
		VALUES ($1, $2, $3, $4, $5, $6)`, it.SKU, it.Name, it.UnitPrice.Amount, it.UnitPrice.Currency, it.OnHand, it.Version)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return ErrSKUTaken
	}
	if err != nil {
		return fmt.Errorf("inventory: insert item: %w", err)
	}
	return nil
}

func (s store) update(ctx context.Context, it Item) error {
	_, err := s.db.Exec(ctx, `UPDATE inventory.items SET unit_price = $2, currency = $3, on_hand = $4, version = $5,
		updated_at = clock_timestamp() WHERE sku = $1`, it.SKU, it.UnitPrice.Amount, it.UnitPrice.Currency, it.OnHand, it.Version)
	if err != nil {
		return fmt.Errorf("inventory: update item: %w", err)
	}
	return nil
}

func (s store) item(ctx context.Context, sku string, lock bool) (Item, error) {
	q := `SELECT sku, name, unit_price, currency, on_hand, reserved, version FROM inventory.items WHERE sku = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	var it Item
	err := s.db.QueryRow(ctx, q, sku).Scan(&it.SKU, &it.Name, &it.UnitPrice.Amount, &it.UnitPrice.Currency, &it.OnHand, &it.Reserved, &it.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return it, ErrNotFound
	}
	if err != nil {
		return it, fmt.Errorf("inventory: read item: %w", err)
	}
	return it, nil
}
