// Package customers keeps customers and their credit (schema customers).
// A customer has a credit limit in one currency; each order placed for it
// reserves its total if the available credit covers it. That happens by
// choreography: the module reacts to orders.order_placed.v1 on its own,
// publishing customers.credit_reserved.v1 or
// customers.credit_limit_exceeded.v1, and to orders.order_rejected.v1 and
// orders.order_cancelled.v1 by releasing what the order holds
// (customers.credit_released.v1). There is at most one reservation per
// order, whatever is redelivered and in whatever order the placement and
// the rejection arrive: a rejection that comes first closes the order, and
// its placement then reserves nothing.
package customers

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"strings"
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
var Definition = modules.Define("customers", migrations, New)

// Module is the customers facade.
type Module struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New builds the module: its routes, its three handlers and its fold
// (customers.customer).
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool, log: d.Logger("customers")}
	d.Route(m.routes)
	// Participants of the order process: each answers with events the
	// fulfilment saga waits for, so replaying them would answer again.
	never := outbox.NeverReplay("its credit reservations and the events answering them are steps of orders' fulfilment; replayed, they would be taken and answered again")
	for _, err := range []error{
		outbox.Handle(d.Consumers, "customers_reserve_credit", orderPlaced, m.reserveCredit, never),
		outbox.Handle(d.Consumers, "customers_release_rejected", orderRejected, m.releaseCredit, never),
		outbox.Handle(d.Consumers, "customers_release_cancelled", orderCancelled, m.releaseCredit, never),
	} {
		if err != nil {
			return nil, fmt.Errorf("customers: %w", err)
		}
	}
	return m, registerFold(d.Folds)
}

// Customer is a customer and its credit.
type Customer struct {
	ID          string
	Name        string
	CreditLimit modules.Money
	Reserved    int64 // in CreditLimit's currency
	CreatedAt   time.Time
}

// Available is the credit not reserved.
func (c Customer) Available() modules.Money {
	return modules.Money{Amount: c.CreditLimit.Amount - c.Reserved, Currency: c.CreditLimit.Currency}
}

// Reservation is what one order holds (or held) of a customer's credit.
type Reservation struct {
	OrderID   string
	Amount    modules.Money
	Status    string // reserved, released, refused, closed
	CreatedAt time.Time
}

// Create registers a customer and appends customers.customer_created.v1.
// Errors: Invalid naming the fields.
func (m *Module) Create(ctx context.Context, name string, limit modules.Money) (Customer, error) {
	name = strings.TrimSpace(name)
	bad := map[string]string{}
	if name == "" || len(name) > 200 {
		bad["name"] = "is required, at most 200 characters"
	}
	if why := modules.CheckMoney(limit, true); why != "" {
		bad["credit_limit"] = why
	}
	if len(bad) > 0 {
		return Customer{}, errs.Validation(bad)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Customer{}, fmt.Errorf("customers: new id: %w", err)
	}
	c := Customer{ID: id.String(), Name: name, CreditLimit: limit, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	err = pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := (store{tx}).insert(ctx, c); err != nil {
			return err
		}
		_, err := outbox.Append(ctx, tx, EventCustomerCreated.New(c.ID, CustomerCreated{
			CustomerID: c.ID, Name: c.Name, CreditLimit: c.CreditLimit, CreatedAt: c.CreatedAt,
		}))
		return err
	})
	if err != nil {
		return Customer{}, fmt.Errorf("customers: create: %w", err)
	}
	return c, nil
}

// Customer returns a customer and its newest reservations (up to limit).
// Errors: Invalid for a malformed id, ErrNotFound.
func (m *Module) Customer(ctx context.Context, id string, limit int) (Customer, []Reservation, error) {
	if u, err := uuid.Parse(id); err != nil || len(id) != 36 || u == uuid.Nil {
		return Customer{}, nil, errs.Validation(map[string]string{"id": "is not a valid customer id"})
	}
	s := store{m.pool}
	c, err := s.customer(ctx, id)
	if err != nil {
		return Customer{}, nil, err
	}
	rs, err := s.reservations(ctx, id, c.CreditLimit.Currency, limit)
	return c, rs, err
}
