package orders_test

import (
	"testing"
	"time"
)

// Orders that cannot be placed are refused with the JSON error shape and
// the right status, and write nothing: no order, no saga, no event.
func TestBadOrdersAreRefusedAndWriteNothing(t *testing.T) {
	f := newFixture(t, 30*time.Second)
	c := f.customer(10_000)
	usd := f.must(f.API("POST", "/customers", map[string]any{"name": "Bob", "credit_limit": money(10_000, "USD")}), 201).Body["id"].(string)
	f.item("apple", 150, 10)
	f.must(f.API("POST", "/inventory/items", map[string]any{"sku": "bagel", "name": "Bagel", "unit_price": money(300, "USD"), "on_hand": 5}), 201)
	f.Drain()
	const nobody = "01a22ec9-d42d-7adf-a89f-44ff7bda7b0a"
	cases := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"no lines", map[string]any{"customer_id": c, "lines": []line{}}, 400, "validation_failed", "lines"},
		{"lines missing", map[string]any{"customer_id": c}, 400, "validation_failed", "lines"},
		{"quantity 0", map[string]any{"customer_id": c, "lines": []line{{"apple", 0}}}, 400, "validation_failed", "lines[0].quantity"},
		{"negative quantity", map[string]any{"customer_id": c, "lines": []line{{"apple", -2}}}, 400, "validation_failed", "lines[0].quantity"},
		{"a SKU twice", map[string]any{"customer_id": c, "lines": []line{{"apple", 1}, {"apple", 1}}}, 400, "validation_failed", "lines[1].sku"},
		{"malformed customer id", map[string]any{"customer_id": "ada", "lines": []line{{"apple", 1}}}, 400, "validation_failed", "customer_id"},
		{"quantity not a number", `{"customer_id":"` + c + `","lines":[{"sku":"apple","quantity":"two"}]}`, 400, "validation_failed", "lines.quantity"},
		{"unknown field", map[string]any{"customer_id": c, "lines": []line{{"apple", 1}}, "coupon": "x"}, 400, "validation_failed", "coupon"},
		{"unknown customer", map[string]any{"customer_id": nobody, "lines": []line{{"apple", 1}}}, 404, "customer_not_found", ""},
		{"unknown SKU", map[string]any{"customer_id": c, "lines": []line{{"apple", 1}, {"kiwi", 1}}}, 422, "unknown_sku", "lines[1].sku"},
		{"mixed currencies", map[string]any{"customer_id": c, "lines": []line{{"apple", 1}, {"bagel", 1}}}, 422, "mixed_currencies", ""},
		{"another currency than the credit", map[string]any{"customer_id": usd, "lines": []line{{"apple", 1}}}, 422, "currency_mismatch", ""},
	}
	for _, tc := range cases {
		var status int
		evs := f.Appended(func() {
			r := f.API("POST", "/orders", tc.body)
			status = r.Status
			if r.Status != tc.status || r.ErrorCode() != tc.code || (tc.field != "" && r.Field(tc.field) == nil) {
				t.Errorf("%s: %d %s; want %d %s naming %q", tc.name, r.Status, r.Raw, tc.status, tc.code, tc.field)
			}
		})
		if len(evs) != 0 {
			t.Errorf("%s (%d): appended %d events", tc.name, status, len(evs))
		}
	}
	if n := f.Count(`SELECT (SELECT count(*) FROM orders.orders) + (SELECT count(*) FROM saga.instances)`); n != 0 {
		t.Errorf("%d orders and sagas written", n)
	}
	if r := f.API("GET", "/orders/"+nobody, nil); r.Status != 404 || r.ErrorCode() != "order_not_found" {
		t.Errorf("unknown order: %d %s", r.Status, r.Raw)
	}
	if r := f.API("GET", "/orders/nope", nil); r.Status != 400 || r.Field("id") == nil {
		t.Errorf("malformed order id: %d %s", r.Status, r.Raw)
	}
}

// Orders are priced from the module's own copy of the catalogue, which
// follows inventory's price changes through its events.
func TestOrdersArePricedFromTheirOwnPriceList(t *testing.T) {
	f := newFixture(t, 30*time.Second)
	c := f.customer(100_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.must(f.API("POST", "/inventory/items/apple/price", map[string]any{"unit_price": money(175, "EUR")}), 200)
	f.Drain()
	r := f.must(f.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []line{{"apple", 2}}}), 201)
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
	r = f.must(f.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []line{{"apple", 1}}}), 201)
	if r.Body["total"].(map[string]any)["amount"].(float64) != 175 {
		t.Errorf("priced from inventory's table: %s", r.Raw)
	}
}
