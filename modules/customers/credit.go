package customers

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

// reserveCredit handles orders.order_placed.v1: under the customer's row
// lock it reserves the order's total if the available credit covers it,
// and records a refusal otherwise. An order that has a row already (a
// placement seen before, under another event id, or an order closed
// before its placement arrived) changes nothing.
func (m *Module) reserveCredit(ctx context.Context, tx pgx.Tx, e outbox.Received[orderPlacedData]) error {
	o := e.Data
	if o.OrderID == "" || o.CustomerID == "" {
		return outbox.Permanent(fmt.Errorf("customers: %s %s has no order or customer id", e.Event.Type, e.ID))
	}
	s := store{tx}
	c, seen, err := s.lockForOrder(ctx, o.CustomerID, o.OrderID)
	if errors.Is(err, ErrNotFound) {
		return outbox.Permanent(fmt.Errorf("customers: order %s is for customer %s, who does not exist", o.OrderID, o.CustomerID))
	}
	if err != nil || seen != "" {
		return err
	}
	covered := o.Total.Currency == c.CreditLimit.Currency && o.Total.Amount >= 0 && o.Total.Amount <= c.Available().Amount
	status, event := "refused", EventCreditLimitExceeded
	if covered {
		status, event = "reserved", EventCreditReserved
		c.Reserved += o.Total.Amount
	}
	b := &pgx.Batch{}
	b.Queue(insertReservationSQL, o.OrderID, c.ID, max(o.Total.Amount, 0), status)
	if covered {
		b.Queue(`UPDATE customers.customers SET reserved = $2 WHERE id = $1`, c.ID, c.Reserved)
	}
	if _, err := outbox.Queue(ctx, b, event.New(c.ID, CreditDecision{
		CustomerID: c.ID, OrderID: o.OrderID, Amount: o.Total, Available: c.Available(),
	})); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("customers: reserve credit for order %s: %w", o.OrderID, err)
	}
	return nil
}

// releaseCredit handles an order's rejection or cancellation: credit it
// holds goes back (customers.credit_released.v1); an order with no row yet
// is closed, so that its placement, if it arrives later, reserves nothing.
func (m *Module) releaseCredit(ctx context.Context, tx pgx.Tx, e outbox.Received[orderClosedData]) error {
	o := e.Data
	if o.OrderID == "" || o.CustomerID == "" {
		return outbox.Permanent(fmt.Errorf("customers: %s %s has no order or customer id", e.Event.Type, e.ID))
	}
	s := store{tx}
	c, seen, err := s.lockForOrder(ctx, o.CustomerID, o.OrderID)
	if errors.Is(err, ErrNotFound) {
		return outbox.Permanent(fmt.Errorf("customers: order %s is for customer %s, who does not exist", o.OrderID, o.CustomerID))
	}
	if err != nil {
		return err
	}
	switch seen {
	case "":
		_, err := tx.Exec(ctx, insertReservationSQL, o.OrderID, c.ID, 0, "closed")
		return err
	case "reserved":
	default:
		return nil // refused, released or closed: nothing held
	}
	var amount int64
	if err := tx.QueryRow(ctx, `UPDATE customers.reservations SET status = 'released', updated_at = clock_timestamp()
		WHERE order_id = $1 RETURNING amount`, o.OrderID).Scan(&amount); err != nil {
		return fmt.Errorf("customers: release order %s: %w", o.OrderID, err)
	}
	c.Reserved -= amount
	b := &pgx.Batch{}
	b.Queue(`UPDATE customers.customers SET reserved = $2 WHERE id = $1`, c.ID, c.Reserved)
	if _, err := outbox.Queue(ctx, b, EventCreditReleased.New(c.ID, CreditDecision{
		CustomerID: c.ID, OrderID: o.OrderID, Amount: modules.Money{Amount: amount, Currency: c.CreditLimit.Currency}, Available: c.Available(),
	})); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("customers: release credit of order %s: %w", o.OrderID, err)
	}
	return nil
}
