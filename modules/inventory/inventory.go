// Package inventory keeps the catalogue and the stock (schema inventory).
// It publishes its catalogue as events (inventory.item_added.v1,
// inventory.price_changed.v1), so that other modules keep their own copy
// and never ask it for a price. It carries out commands (internal events it
// declares: reserve_stock, release_stock, commit_stock) and answers each
// with an event keyed by the reservation id; it never knows who sent them.
// A reservation id has one row whatever is redelivered, and a release that
// arrives before its reserve closes the reservation, so the reserve that
// follows reserves nothing.
package inventory

import (
	"context"
	"embed"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the module with the app (app/modules.go).
var Definition = modules.Define("inventory", migrations, New)

// Module is the inventory facade.
type Module struct{ pool *pgxpool.Pool }

// New builds the module: its routes, its three command handlers and its
// fold (inventory.item).
func New(d modules.Deps) (*Module, error) {
	m := &Module{pool: d.Pool}
	d.Route(m.routes)
	// Commands of the fulfilment saga: replayed, they would move stock and
	// answer the saga again.
	never := outbox.NeverReplay("its handlers carry out the fulfilment saga's commands and answer them; replayed, they would move stock and answer again")
	for _, err := range []error{
		outbox.Handle(d.Consumers, "inventory_reserve_stock", CommandReserveStock, m.reserve, never),
		outbox.Handle(d.Consumers, "inventory_release_stock", CommandReleaseStock, m.release, never),
		outbox.Handle(d.Consumers, "inventory_commit_stock", CommandCommitStock, m.commit, never),
	} {
		if err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
	}
	return m, registerFold(d.Folds)
}

// Item is a catalogue item and its stock.
type Item struct {
	SKU       string
	Name      string
	UnitPrice modules.Money
	OnHand    int64
	Reserved  int64
	Version   int64
}

// Available is what is on hand and not reserved.
func (i Item) Available() int64 { return i.OnHand - i.Reserved }

var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// maxQuantity bounds a stock level or a line, so that sums never overflow.
const maxQuantity = 1_000_000_000

// Add puts an item in the catalogue and appends inventory.item_added.v1.
// Errors: Invalid naming the fields, ErrSKUTaken.
func (m *Module) Add(ctx context.Context, sku, name string, price modules.Money, onHand int64) (Item, error) {
	name = strings.TrimSpace(name)
	bad := map[string]string{}
	if !skuPattern.MatchString(sku) {
		bad["sku"] = "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
	}
	if name == "" || len(name) > 200 {
		bad["name"] = "is required, at most 200 characters"
	}
	if why := modules.CheckMoney(price, false); why != "" {
		bad["unit_price"] = why
	}
	if onHand < 0 || onHand > maxQuantity {
		bad["on_hand"] = "must be from 0 to 10^9"
	}
	if len(bad) > 0 {
		return Item{}, errs.Validation(bad)
	}
	it := Item{SKU: sku, Name: name, UnitPrice: price, OnHand: onHand, Version: 1}
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := (store{tx}).insert(ctx, it); err != nil {
			return err
		}
		_, err := outbox.Append(ctx, tx, EventItemAdded.New(sku, ItemAdded{SKU: sku, Name: name, UnitPrice: price, OnHand: onHand, Version: 1}))
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("inventory: add %s: %w", sku, err)
	}
	return it, nil
}

// Restock adds units on hand and appends inventory.restocked.v1. Errors:
// Invalid, ErrNotFound.
func (m *Module) Restock(ctx context.Context, sku string, quantity int64) (Item, error) {
	if quantity < 1 || quantity > maxQuantity {
		return Item{}, errs.Validation(map[string]string{"quantity": "must be from 1 to 10^9"})
	}
	return m.change(ctx, sku, func(it *Item) (outbox.Event, error) {
		if it.OnHand+quantity > 1000*maxQuantity {
			return outbox.Event{}, errs.Validation(map[string]string{"quantity": "would take on hand above 10^12"})
		}
		it.OnHand += quantity
		return EventRestocked.New(sku, Restocked{SKU: sku, Quantity: quantity, OnHand: it.OnHand}), nil
	})
}

// ChangePrice sets an item's unit price and appends
// inventory.price_changed.v1 (none if the price is the same). Errors:
// Invalid, ErrNotFound.
func (m *Module) ChangePrice(ctx context.Context, sku string, price modules.Money) (Item, error) {
	if why := modules.CheckMoney(price, false); why != "" {
		return Item{}, errs.Validation(map[string]string{"unit_price": why})
	}
	return m.change(ctx, sku, func(it *Item) (outbox.Event, error) {
		if it.UnitPrice == price {
			return outbox.Event{}, nil
		}
		it.UnitPrice = price
		it.Version++
		return EventPriceChanged.New(sku, PriceChanged{SKU: sku, UnitPrice: price, Version: it.Version}), nil
	})
}

// change applies fn to an item under its row lock and appends the event
// fn returns (none if its Type is empty).
func (m *Module) change(ctx context.Context, sku string, fn func(*Item) (outbox.Event, error)) (Item, error) {
	if !skuPattern.MatchString(sku) {
		return Item{}, ErrNotFound
	}
	var it Item
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		s := store{tx}
		var err error
		if it, err = s.item(ctx, sku, true); err != nil {
			return err
		}
		ev, err := fn(&it)
		if err != nil || ev.Type == "" {
			return err
		}
		if err := s.update(ctx, it); err != nil {
			return err
		}
		_, err = outbox.Append(ctx, tx, ev)
		return err
	})
	if err != nil {
		return Item{}, fmt.Errorf("inventory: %s: %w", sku, err)
	}
	return it, nil
}

// Item returns an item and its stock. Errors: ErrNotFound.
func (m *Module) Item(ctx context.Context, sku string) (Item, error) {
	if !skuPattern.MatchString(sku) {
		return Item{}, ErrNotFound
	}
	return store{m.pool}.item(ctx, sku, false)
}
