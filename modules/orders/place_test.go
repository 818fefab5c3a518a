package orders_test

import (
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

type line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

func money(amount int64, currency string) map[string]any {
	return map[string]any{"amount": amount, "currency": currency}
}

// Orders that cannot be placed are refused with the JSON error shape and
// the right status, and write nothing: no order, no saga, no event.
func TestBadOrdersAreRefusedAndWriteNothing(t *testing.T) {
	f := testenv.StartApp(t, testenv.AppOptions{})
	must := func(r testenv.Response) testenv.Response {
		t.Helper()
		if r.Status != 201 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		return r
	}
	c := must(f.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": money(10_000, "EUR")})).Body["id"].(string)
	usd := must(f.API("POST", "/customers", map[string]any{"name": "Bob", "credit_limit": money(10_000, "USD")})).Body["id"].(string)
	must(f.API("POST", "/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": money(150, "EUR"), "on_hand": 10}))
	must(f.API("POST", "/inventory/items", map[string]any{"sku": "bagel", "name": "Bagel", "unit_price": money(300, "USD"), "on_hand": 5}))
	f.Drain() // the orders module knows them from their events
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
