package customers

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
)

type store struct{ db modules.DBTX }

func (s store) insert(ctx context.Context, c Customer) error {
	_, err := s.db.Exec(ctx, `INSERT INTO customers.customers (id, name, currency, credit_limit, created_at)
		VALUES ($1, $2, $3, $4, $5)`, c.ID, c.Name, c.CreditLimit.Currency, c.CreditLimit.Amount, c.CreatedAt)
	if err != nil {
		return fmt.Errorf("customers: insert: %w", err)
	}
	return nil
}

const customerColumns = `c.id::text, c.name, c.currency, c.credit_limit, c.reserved, c.created_at`

func scanCustomer(row pgx.Row, extra ...any) (Customer, error) {
	var c Customer
	err := row.Scan(append([]any{&c.ID, &c.Name, &c.CreditLimit.Currency, &c.CreditLimit.Amount, &c.Reserved, &c.CreatedAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

func (s store) customer(ctx context.Context, id string) (Customer, error) {
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers.customers c WHERE c.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return c, fmt.Errorf("customers: read customer: %w", err)
	}
	return c, err
}

// lockForOrder locks the customer's row (every change to its credit
// happens under it) and returns the status of the order's reservation row,
// "" if it has none.
func (s store) lockForOrder(ctx context.Context, customerID, orderID string) (Customer, string, error) {
	var seen *string
	c, err := scanCustomer(s.db.QueryRow(ctx, `SELECT `+customerColumns+`, r.status FROM customers.customers c
		LEFT JOIN customers.reservations r ON r.order_id = $2
		WHERE c.id = $1 FOR UPDATE OF c`, customerID, orderID), &seen)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return c, "", err
		}
		return c, "", fmt.Errorf("customers: lock customer %s: %w", customerID, err)
	}
	if seen == nil {
		return c, "", nil
	}
	return c, *seen, nil
}

const insertReservationSQL = `INSERT INTO customers.reservations (order_id, customer_id, amount, status) VALUES ($1, $2, $3, $4)`

func (s store) reservations(ctx context.Context, customerID, currency string, limit int) ([]Reservation, error) {
	rows, err := s.db.Query(ctx, `SELECT order_id::text, amount, status, created_at FROM customers.reservations
		WHERE customer_id = $1 ORDER BY created_at DESC, order_id LIMIT $2`, customerID, limit)
	if err != nil {
		return nil, fmt.Errorf("customers: read reservations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Reservation, error) {
		r := Reservation{Amount: modules.Money{Currency: currency}}
		err := row.Scan(&r.OrderID, &r.Amount.Amount, &r.Status, &r.CreatedAt)
		r.CreatedAt = r.CreatedAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("customers: read reservations: %w", err)
	}
	return out, nil
}
