package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

// priceOrder reads, in one round trip, the currency of the customer's
// credit ("" for an unknown customer) and the prices of skus it knows.
func (s store) priceOrder(ctx context.Context, customerID string, skus []string) (string, map[string]modules.Money, error) {
	pool, ok := s.db.(*pgxpool.Pool)
	if !ok {
		return "", nil, fmt.Errorf("orders: priceOrder runs on the pool")
	}
	b := &pgx.Batch{}
	var currency string
	prices := map[string]modules.Money{}
	b.Queue(`SELECT currency FROM orders.customers WHERE id = $1`, customerID).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&currency)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	b.Queue(`SELECT sku, unit_price, currency FROM orders.prices WHERE sku = ANY($1)`, skus).Query(func(rows pgx.Rows) error {
		var sku string
		var p modules.Money
		_, err := pgx.ForEachRow(rows, []any{&sku, &p.Amount, &p.Currency}, func() error { prices[sku] = p; return nil })
		return err
	})
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return "", nil, fmt.Errorf("orders: read prices: %w", err)
	}
	return currency, prices, nil
}

// insertSQL stores a new pending order and the first entry of its
// history, in one statement (queued with the saga's start).
const insertSQL = `WITH o AS (
	INSERT INTO orders.orders (id, customer_id, lines, currency, total, status, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6) RETURNING id)
	INSERT INTO orders.status_changes (order_id, seq, at, from_status, to_status, cause)
	SELECT id, 1, $6, '', 'pending', 'placed' FROM o`

const orderColumns = `id::text, customer_id::text, lines, currency, total, status, reason, cancel_requested_at IS NOT NULL, created_at, updated_at`

func scanOrder(row pgx.Row) (Order, error) {
	var o Order
	var lines []byte
	err := row.Scan(&o.ID, &o.CustomerID, &lines, &o.Total.Currency, &o.Total.Amount, &o.Status, &o.Reason, &o.CancelRequested, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("orders: read order: %w", err)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if err := json.Unmarshal(lines, &o.Lines); err != nil {
		return o, fmt.Errorf("orders: order %s: lines: %w", o.ID, err)
	}
	return o, nil
}

func (s store) order(ctx context.Context, id string) (Order, error) {
	return scanOrder(s.db.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders.orders WHERE id = $1`, id))
}

func (s store) lockOrder(ctx context.Context, id string) (Order, error) {
	return scanOrder(s.db.QueryRow(ctx, `SELECT `+orderColumns+` FROM orders.orders WHERE id = $1 FOR UPDATE`, id))
}

func (s store) requestCancel(ctx context.Context, id string) error {
	_, err := s.db.Exec(ctx, `UPDATE orders.orders SET cancel_requested_at = clock_timestamp() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("orders: request cancel: %w", err)
	}
	return nil
}

// setStatusSQL changes an order's status ($2, reason $3) and appends the
// change (cause $4) to its history, in one statement that needs no answer,
// so a saga step queues it with its own records (saga.Step.Exec).
const setStatusSQL = `WITH old AS (SELECT status FROM orders.orders WHERE id = $1),
	u AS (UPDATE orders.orders SET status = $2, reason = $3, changes = changes + 1, updated_at = clock_timestamp()
	      WHERE id = $1 RETURNING changes)
	INSERT INTO orders.status_changes (order_id, seq, from_status, to_status, cause)
	SELECT $1, u.changes, old.status, $2, $4 FROM u, old`

// changes returns an order's history after seq, oldest first.
func (s store) changes(ctx context.Context, id string, after int) ([]StatusChange, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, at, from_status, to_status, cause FROM orders.status_changes
		WHERE order_id = $1 AND seq > $2 ORDER BY seq`, id, after)
	if err != nil {
		return nil, fmt.Errorf("orders: read history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (StatusChange, error) {
		var c StatusChange
		err := row.Scan(&c.Seq, &c.At, &c.From, &c.To, &c.Cause)
		c.At = c.At.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("orders: read history: %w", err)
	}
	return out, nil
}
