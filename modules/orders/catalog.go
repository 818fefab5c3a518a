package orders

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules/inventory"
	"github.com/cairn-dev/cairn/outbox"
)

// The module's own price list and customer list, kept from the events of
// inventory and customers.
var (
	itemAdded    = inventory.EventItemAdded
	priceChanged = inventory.EventPriceChanged
)

// keepItemPrice records a new item's price, unless a newer version of it
// (a price change handled first) is there already.
func (m *Module) keepItemPrice(ctx context.Context, tx pgx.Tx, e outbox.Received[inventory.ItemAdded]) error {
	return keepPrice(ctx, tx, e.Data.SKU, e.Data.UnitPrice.Amount, e.Data.UnitPrice.Currency, e.Data.Version)
}

// keepPrice records a price change, unless a newer version is there.
func (m *Module) keepPrice(ctx context.Context, tx pgx.Tx, e outbox.Received[inventory.PriceChanged]) error {
	return keepPrice(ctx, tx, e.Data.SKU, e.Data.UnitPrice.Amount, e.Data.UnitPrice.Currency, e.Data.Version)
}

func keepPrice(ctx context.Context, tx pgx.Tx, sku string, amount int64, currency string, version int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO orders.prices (sku, unit_price, currency, version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (sku) DO UPDATE SET unit_price = EXCLUDED.unit_price, currency = EXCLUDED.currency, version = EXCLUDED.version
		WHERE orders.prices.version < EXCLUDED.version`, sku, amount, currency, version)
	if err != nil {
		return fmt.Errorf("orders: keep the price of %s: %w", sku, err)
	}
	return nil
}

// keepCustomer records a customer orders may be placed for.
func (m *Module) keepCustomer(ctx context.Context, tx pgx.Tx, e outbox.Received[customerCreatedData]) error {
	_, err := tx.Exec(ctx, `INSERT INTO orders.customers (id, currency) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		e.Data.CustomerID, e.Data.CreditLimit.Currency)
	if err != nil {
		return fmt.Errorf("orders: keep customer %s: %w", e.Data.CustomerID, err)
	}
	return nil
}
