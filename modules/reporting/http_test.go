package reporting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/testenv"
)

func money(amount int64, currency string) map[string]any {
	return map[string]any{"amount": amount, "currency": currency}
}

// waitFor asks path until ok accepts the answer, or fails after 60 s.
func waitFor(t *testing.T, a *testenv.App, path string, ok func(testenv.Response) bool) testenv.Response {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := a.API("GET", path, nil)
		if r.Status == 200 && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			for _, line := range strings.Split(a.Logs(), "\n") {
				if strings.Contains(line, "component=projection") {
					t.Log(line)
				}
			}
			t.Fatalf("GET %s never gave the expected answer; last: %d %s", path, r.Status, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An order placed through the API shows in every report, joined from the
// events of orders, customers, inventory and payments, and the ledger's
// movements in the accounts report; each answer says what it reflects.
// Bad parameters are refused with 400 and the JSON error shape, naming
// each one.
func TestReportsShowWhatTheModulesDid(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond})
	must := func(r testenv.Response) testenv.Response {
		t.Helper()
		if r.Status != 201 && r.Status != 202 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		return r
	}
	c := must(a.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": money(10_000, "EUR")})).Body["id"].(string)
	must(a.API("POST", "/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": money(150, "EUR"), "on_hand": 10}))
	a.Drain()
	o := must(a.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []map[string]any{{"sku": "apple", "quantity": 3}}})).Body["id"].(string)
	acc := must(a.API("POST", "/accounts", map[string]string{"owner": "Ada", "currency": "EUR"})).Body["id"].(string)
	must(a.API("POST", "/accounts/"+acc+"/deposits", map[string]int{"amount": 500}))
	must(a.API("POST", "/accounts/"+acc+"/withdrawals", map[string]int{"amount": 120}))

	r := waitFor(t, a, "/reports/orders?customer_id="+c, func(r testenv.Response) bool {
		lines, _ := r.Body["lines"].([]any)
		return len(lines) == 1 && lines[0].(map[string]any)["status"] == "approved" &&
			lines[0].(map[string]any)["customer"].(map[string]any)["id"] == c
	})
	l := r.Body["lines"].([]any)[0].(map[string]any)
	if name := l["customer"].(map[string]any)["name"]; name != nil {
		t.Errorf("the report keeps the customer's name %v: reports keep no personal data", name)
	}
	if l["order_id"] != o || l["sku"] != "apple" || l["item_name"] != "Apple" || l["quantity"] != 3.0 ||
		l["total"].(map[string]any)["amount"] != 450.0 || l["stock_reserved"] != true || l["payment_authorized"] != true {
		t.Errorf("order line: %s", r.Raw)
	}
	if refl := r.Body["reflects"].(map[string]any); refl["stream_seq"].(float64) < 1 || refl["version"] != 1.0 {
		t.Errorf("reflects: %v", refl)
	}
	waitFor(t, a, "/reports/stock", func(r testenv.Response) bool {
		items, _ := r.Body["items"].([]any)
		if len(items) != 1 {
			return false
		}
		it := items[0].(map[string]any)
		return it["on_hand"] == 7.0 && it["reserved"] == 0.0 && it["available"] == 7.0 && it["units_sold"] == 3.0
	})
	waitFor(t, a, "/reports/sales/daily?currency=EUR", func(r testenv.Response) bool {
		days, _ := r.Body["days"].([]any)
		if len(days) != 1 {
			return false
		}
		d := days[0].(map[string]any)
		return d["placed"] == 1.0 && d["approved"] == 1.0 && d["approved_amount"] == 450.0
	})
	waitFor(t, a, "/reports/accounts/daily", func(r testenv.Response) bool {
		days, _ := r.Body["days"].([]any)
		if len(days) != 1 {
			return false
		}
		d := days[0].(map[string]any)
		return d["opened"] == 1.0 && d["deposits"] == 1.0 && d["deposited"] == 500.0 && d["withdrawals"] == 1.0 && d["withdrawn"] == 120.0
	})

	bad := []struct{ path, field string }{
		{"/reports/orders?limit=0", "limit"},
		{"/reports/orders?limit=x", "limit"},
		{"/reports/orders?status=lost", "status"},
		{"/reports/orders?customer_id=ada", "customer_id"},
		{"/reports/orders?from=yesterday", "from"},
		{"/reports/orders?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to"},
		{"/reports/orders?after=nope", "after"},
		{"/reports/orders?colour=red", "colour"},
		{"/reports/orders?sku=a&sku=b", "sku"},
		{"/reports/sales/daily?currency=euro", "currency"},
		{"/reports/sales/daily?from=2026-13-01", "from"},
		{"/reports/accounts/daily?from=2026-01-02&to=2026-01-01", "to"},
		{"/reports/stock?x=1", "x"},
	}
	for _, b := range bad {
		r := a.API("GET", b.path, nil)
		if r.Status != 400 || r.ErrorCode() != "validation_failed" || r.Field(b.field) == nil {
			t.Errorf("GET %s: %d %s; want 400 validation_failed naming %s", b.path, r.Status, r.Raw, b.field)
		}
	}
}
