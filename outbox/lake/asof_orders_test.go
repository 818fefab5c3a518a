package lake_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/inventory"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// entity is one aggregate of the order flow: where its module answers for
// it, and the fields its fold must reproduce.
type entity struct {
	aggregate, key, path string
	fields               []string
}

// moment is what every module answered for the entities known at one
// instant, the app quiet.
type moment struct {
	name    string
	at      time.Time
	answers map[string]testenv.Response // by entity path
}

// The customer, the items, the orders and the payments of an order flow,
// as the lake folds them as of several moments, equal what the modules
// themselves answered at those moments: after the customer and the items
// were added, an approved order, a restock and a price change, an order
// whose payment was declined, a reservation of stock held (commanded as
// the saga would), an approved order, and its cancellation.
// Before any of their events the lake answers 404.
func TestOrderAggregatesAsOf(t *testing.T) {
	a := newLakeApp(t, func(c *config.Config) { c.PaymentsDeclineAbove = 1000 })
	before := time.Now().Add(-time.Minute)
	post := func(path string, body any, status int) testenv.Response {
		t.Helper()
		r := a.API("POST", path, body)
		if r.Status != status {
			t.Fatalf("POST %s: %d %s", path, r.Status, r.Raw)
		}
		return r
	}
	eur := func(n int64) map[string]any { return map[string]any{"amount": n, "currency": "EUR"} }
	cust := post("/customers", map[string]any{"name": "Ada", "credit_limit": eur(5000)}, 201).Body["id"].(string)
	post("/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": eur(150), "on_hand": 10}, 201)
	post("/inventory/items", map[string]any{"sku": "pear", "name": "Pear", "unit_price": eur(200), "on_hand": 5}, 201)
	entities := []entity{
		{"customers.customer", cust, "/customers/" + cust, []string{"name", "credit_limit", "available_credit", "created_at"}},
		{"inventory.item", "apple", "/inventory/items/apple", []string{"sku", "name", "unit_price", "on_hand", "reserved", "available"}},
		{"inventory.item", "pear", "/inventory/items/pear", []string{"sku", "name", "unit_price", "on_hand", "reserved", "available"}},
	}
	var moments []moment
	snapshot := func(name string) {
		t.Helper()
		a.Drain()
		time.Sleep(15 * time.Millisecond)
		m := moment{name: name, at: time.Now(), answers: map[string]testenv.Response{}}
		time.Sleep(15 * time.Millisecond)
		for _, e := range entities {
			m.answers[e.path] = a.API("GET", e.path, nil)
		}
		moments = append(moments, m)
	}
	order := func(status string, lines ...map[string]any) string {
		t.Helper()
		id := post("/orders", map[string]any{"customer_id": cust, "lines": lines}, 201).Body["id"].(string)
		await(t, a, id, status)
		entities = append(entities,
			entity{"orders.order", id, "/orders/" + id, []string{"customer_id", "lines", "total", "status", "reason", "cancel_requested", "created_at"}},
			entity{"payments.payment", id, "/payments/" + id, []string{"amount", "status", "authorization_id", "reason"}})
		return id
	}
	line := func(sku string, q int) map[string]any { return map[string]any{"sku": sku, "quantity": q} }

	snapshot("customer and items added")
	approved := order("approved", line("apple", 2), line("pear", 1))
	snapshot("an order approved")
	post("/inventory/items/apple/restock", map[string]any{"quantity": 5}, 200)
	post("/inventory/items/pear/price", map[string]any{"unit_price": eur(250)}, 200)
	snapshot("a restock and a price change")
	held := uuid.NewString()
	command(t, a, inventory.CommandReserveStock.New(held, inventory.ReserveStock{ReservationID: held, Lines: []inventory.Line{{SKU: "apple", Quantity: 3}}}))
	snapshot("three apples held by a reservation")
	declined := order("rejected", line("apple", 8))
	snapshot("an order whose payment was declined")
	cancelled := order("approved", line("pear", 1))
	snapshot("another order approved")
	post("/orders/"+cancelled+"/cancel", nil, 202)
	await(t, a, cancelled, "cancelled")
	command(t, a, inventory.CommandReleaseStock.New(held, inventory.ReservationRef{ReservationID: held}))
	snapshot("that order cancelled, the apples released")
	a.settle()

	for _, m := range moments {
		q := "?as_of=" + m.at.UTC().Format(time.RFC3339Nano)
		for _, e := range entities {
			module, ok := m.answers[e.path]
			if !ok {
				continue // not there yet
			}
			lake := a.admin("/lake/subjects/" + e.key + "/state" + q + "&type=" + e.aggregate)
			if module.Status == 404 {
				if lake.Status != 404 {
					t.Errorf("%s, %s %s: the module has none, the lake %d %s", m.name, e.aggregate, e.key, lake.Status, lake.Raw)
				}
				continue
			}
			if module.Status != 200 || lake.Status != 200 || lake.Body["type"] != e.aggregate {
				t.Fatalf("%s, %s %s: module %d %s, lake %d %s", m.name, e.aggregate, e.key, module.Status, module.Raw, lake.Status, lake.Raw)
			}
			st := lake.Body["state"].(map[string]any)
			for _, f := range e.fields {
				if fmt.Sprint(st[f]) != fmt.Sprint(module.Body[f]) {
					t.Errorf("%s, %s %s: lake %s = %v, module %v", m.name, e.aggregate, e.key, f, st[f], module.Body[f])
				}
			}
			if e.aggregate == "customers.customer" {
				if got, want := reservations(st["reservations"]), reservations(module.Body["reservations"]); got != want {
					t.Errorf("%s: the customer's reservations in the lake %s, in the module %s", m.name, got, want)
				}
			}
		}
	}
	for _, e := range entities {
		if r := a.admin("/lake/subjects/" + e.key + "/state?type=" + e.aggregate + "&as_of=" + before.UTC().Format(time.RFC3339)); r.Status != 404 || r.ErrorCode() != "not_found" {
			t.Errorf("%s %s before its first event: %d %s", e.aggregate, e.key, r.Status, r.Raw)
		}
	}
	// Without a type, an order's id folds the order: its placement is the
	// first event of that id.
	if r := a.admin("/lake/subjects/" + approved + "/state"); r.Body["type"] != "orders.order" {
		t.Errorf("state of an order's id, no type: %s", r.Raw)
	}
	final := a.admin("/lake/subjects/" + declined + "/state?type=payments.payment").Body["state"]
	if st, _ := final.(map[string]any); st["status"] != "declined" {
		t.Errorf("the declined order's payment: %v", final)
	}
}

// command appends a command to a module, as a saga step would.
func command(t *testing.T, a *lakeApp, e outbox.Event) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), a.DB.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(context.Background(), tx, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// await waits until the order has status.
func await(t *testing.T, a *lakeApp, id, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := a.API("GET", "/orders/"+id, nil)
		if r.Body["status"] == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: %s after 20 s, want %s", id, r.Raw, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reservations lists a customer's reservations by order, in a stable form.
func reservations(v any) string {
	byOrder := map[string]string{}
	list, _ := v.([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		byOrder[fmt.Sprint(m["order_id"])] = fmt.Sprint(m["status"], " ", m["amount"])
	}
	return fmt.Sprint(byOrder)
}
