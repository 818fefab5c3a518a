package integration_test

import (
	"testing"
	"time"
)

// Orders are priced from the module's own copy of the catalogue, which
// follows inventory's price changes through its events.
func TestOrdersArePricedFromTheirOwnPriceList(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(100_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.must(f.API("POST", "/inventory/items/apple/price", map[string]any{"unit_price": moneyJSON(175, "EUR")}), 200)
	f.Drain()
	r := f.must(f.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []ordersLine{{"apple", 2}}}), 201)
	if total := r.Body["total"].(map[string]any); total["amount"].(float64) != 350 || total["currency"] != "EUR" {
		t.Errorf("total %v, want 350 EUR", total)
	}
	lines := r.Body["lines"].([]any)
	if price := lines[0].(map[string]any)["unit_price"].(map[string]any)["amount"].(float64); price != 175 {
		t.Errorf("unit price %v, want 175", price)
	}
	// The price list is the module's own: priced as before, whatever
	// inventory's table says now.
	if _, err := f.DB.Pool.Exec(t.Context(), `UPDATE inventory.items SET unit_price = 1 WHERE sku = 'apple'`); err != nil {
		t.Fatal(err)
	}
	r = f.must(f.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []ordersLine{{"apple", 1}}}), 201)
	if r.Body["total"].(map[string]any)["amount"].(float64) != 175 {
		t.Errorf("priced from inventory's table: %s", r.Raw)
	}
}
