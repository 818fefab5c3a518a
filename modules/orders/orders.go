// Package orders takes orders (schema orders) and sees each through to
// approval or rejection with the fulfilment saga (fulfilment.go), which
// combines both topologies: the customers module reserves credit on its
// own when it sees orders.order_placed.v1 (choreography), and the saga then
// commands inventory and payments (orchestration) and compensates what was
// done when a step fails, times out or the customer cancels.
//
// Prices come from the module's own copy of inventory's catalogue, kept
// from inventory's events; customers from customers.customer_created.v1.
// Placing an order never calls another module: an item or a customer
// created a moment ago is known once its event has arrived.
package orders

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go).
var Definition = modules.Define("orders", migrations, New)

// The statuses of an order, and why one was rejected or cancelled.
const (
	StatusPending   = "pending"
	StatusApproved  = "approved"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"

	ReasonCreditLimitExceeded = "credit_limit_exceeded"
	ReasonOutOfStock          = "out_of_stock"
	ReasonPaymentDeclined     = "payment_declined"
	ReasonTimeout             = "timeout"
	ReasonCancelledByCustomer = "cancelled_by_customer"
)

// Module is the orders facade.
type Module struct {
	pool        *pgxpool.Pool
	log         *slog.Logger
	stepTimeout time.Duration
	closing     <-chan struct{}
	fulfilment  *fulfilment
}

// New builds the module: its routes, the handlers that keep its price list
// and customer list, the fulfilment saga (CAIRN_ORDERS_STEP_TIMEOUT) and
// its fold (orders.order).
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool, log: d.Logger("orders"), stepTimeout: d.Config.OrdersStepTimeout, closing: d.Closing}
	if m.stepTimeout <= 0 {
		return nil, fmt.Errorf("orders: CAIRN_ORDERS_STEP_TIMEOUT must be positive")
	}
	d.Route(m.routes)
	for _, err := range []error{
		// Read models: rebuildable. They need no reset: their writes are
		// idempotent upserts in which the newest version wins, so replaying
		// over the tables converges, and a reset of the price list by one
		// of its two consumers would drop what the other keeps.
		outbox.Handle(d.Consumers, "orders_item_added", itemAdded, m.keepItemPrice, outbox.RebuildableWith(nil)),
		outbox.Handle(d.Consumers, "orders_price_changed", priceChanged, m.keepPrice, outbox.RebuildableWith(nil)),
		outbox.Handle(d.Consumers, "orders_customer_created", customerCreated, m.keepCustomer, outbox.RebuildableWith(nil)),
	} {
		if err != nil {
			return nil, fmt.Errorf("orders: %w", err)
		}
	}
	m.fulfilment = newFulfilment(m)
	if err := d.Sagas.Register(m.fulfilment.def); err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return m, registerFold(d.Folds)
}

// LineRequest is one line as a customer asks for it.
type LineRequest struct {
	SKU      string
	Quantity int64
}

// Order is an order and its status.
type Order struct {
	ID              string
	CustomerID      string
	Lines           []Line
	Total           modules.Money
	Status          string
	Reason          string
	CancelRequested bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// StatusChange is one entry of an order's history.
type StatusChange struct {
	Seq   int
	At    time.Time
	From  string // "" for the first
	To    string
	Cause string
}

// maxLines and maxQuantity bound an order, so that its total cannot
// overflow before it is checked.
const (
	maxLines    = 100
	maxQuantity = 1_000_000
)

// Place prices the order from the module's price list and, in one
// transaction, stores it as pending, starts its fulfilment saga and appends
// orders.order_placed.v1. Errors, with nothing written: Invalid naming the
// fields (no lines, a quantity below 1, a malformed id), ErrCustomerNotFound,
// ErrUnknownSKU naming the lines, ErrMixedCurrencies, ErrCurrencyMismatch,
// ErrTotalTooLarge.
func (m *Module) Place(ctx context.Context, customerID string, lines []LineRequest) (Order, error) {
	if err := checkPlace(customerID, lines); err != nil {
		return Order{}, err
	}
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	currency, prices, err := store{m.pool}.priceOrder(ctx, customerID, skus)
	if err != nil {
		return Order{}, err
	}
	o, err := price(customerID, currency, lines, prices)
	if err != nil {
		return Order{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, fmt.Errorf("orders: new id: %w", err)
	}
	o.ID = id.String()
	o.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	o.UpdatedAt = o.CreatedAt
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error { return m.fulfilment.start(ctx, tx, o) })
	if err != nil {
		return Order{}, fmt.Errorf("orders: place: %w", err)
	}
	return o, nil
}

func checkPlace(customerID string, lines []LineRequest) error {
	bad := map[string]string{}
	if !validID(customerID) {
		bad["customer_id"] = "is not a valid customer id"
	}
	switch {
	case len(lines) == 0:
		bad["lines"] = "must hold at least one line"
	case len(lines) > maxLines:
		bad["lines"] = fmt.Sprintf("must hold at most %d lines", maxLines)
	}
	seen := map[string]bool{}
	for i, l := range lines {
		switch {
		case l.SKU == "":
			bad[fmt.Sprintf("lines[%d].sku", i)] = "is required"
		case seen[l.SKU]:
			bad[fmt.Sprintf("lines[%d].sku", i)] = "appears on another line: one line per SKU"
		}
		seen[l.SKU] = true
		if l.Quantity < 1 || l.Quantity > maxQuantity {
			bad[fmt.Sprintf("lines[%d].quantity", i)] = fmt.Sprintf("must be from 1 to %d", maxQuantity)
		}
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	return nil
}

// price prices lines for a customer whose credit is in currency ("" for an
// unknown customer).
func price(customerID, currency string, lines []LineRequest, prices map[string]modules.Money) (Order, error) {
	if currency == "" {
		return Order{}, ErrCustomerNotFound
	}
	unknown := map[string]string{}
	o := Order{CustomerID: customerID, Status: StatusPending}
	for i, l := range lines {
		p, ok := prices[l.SKU]
		if !ok {
			unknown[fmt.Sprintf("lines[%d].sku", i)] = fmt.Sprintf("%s is not in the catalogue", l.SKU)
			continue
		}
		if o.Total.Currency == "" {
			o.Total.Currency = p.Currency
		} else if p.Currency != o.Total.Currency {
			return Order{}, ErrMixedCurrencies
		}
		if p.Amount > (modules.MaxAmount-o.Total.Amount)/l.Quantity {
			return Order{}, ErrTotalTooLarge
		}
		o.Total.Amount += l.Quantity * p.Amount
		o.Lines = append(o.Lines, Line{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: p})
	}
	if len(unknown) > 0 {
		return Order{}, ErrUnknownSKU.WithFields(unknown)
	}
	if o.Total.Currency != currency {
		return Order{}, ErrCurrencyMismatch.WithMessage(fmt.Sprintf("the order is priced in %s and the customer's credit is in %s", o.Total.Currency, currency))
	}
	return o, nil
}

// Order returns an order and its history. Errors: Invalid for a malformed
// id, ErrNotFound.
func (m *Module) Order(ctx context.Context, id string) (Order, []StatusChange, error) {
	if !validID(id) {
		return Order{}, nil, errs.Validation(map[string]string{"id": "is not a valid order id"})
	}
	s := store{m.pool}
	o, err := s.order(ctx, id)
	if err != nil {
		return o, nil, err
	}
	h, err := s.changes(ctx, id, 0)
	return o, h, err
}

// Cancel asks for a pending or approved order to be cancelled: its
// fulfilment saga gives back what was done (payment, stock, then credit)
// and the order becomes cancelled then. Asking again changes nothing.
// Errors: Invalid, ErrNotFound, ErrOrderFinal (rejected or cancelled).
func (m *Module) Cancel(ctx context.Context, id string) (Order, error) {
	if !validID(id) {
		return Order{}, errs.Validation(map[string]string{"id": "is not a valid order id"})
	}
	var o Order
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		s := store{tx}
		var err error
		if o, err = s.lockOrder(ctx, id); err != nil {
			return err
		}
		switch {
		case o.Status == StatusRejected || o.Status == StatusCancelled:
			return ErrOrderFinal.WithMessage("the order is " + o.Status + " already")
		case o.CancelRequested:
			return nil
		}
		if err := s.requestCancel(ctx, id); err != nil {
			return err
		}
		o.CancelRequested = true
		_, err = outbox.Append(ctx, tx, eventCancellationRequested.New(id, CancellationRequested{OrderID: id}))
		return err
	})
	if err != nil {
		return Order{}, fmt.Errorf("orders: cancel %s: %w", id, err)
	}
	return o, nil
}

func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && len(id) == 36 && u != uuid.Nil
}
