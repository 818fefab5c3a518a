package customers_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func money(amount int64, currency string) map[string]any {
	return map[string]any{"amount": amount, "currency": currency}
}

// A customer is created with its credit limit, all of it available, and
// announced; bad input is 400 naming the field, an unknown customer 404.
func TestCustomerIsCreated(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	var r testenv.Response
	evs := a.Appended(func() {
		r = a.API("POST", "/customers", map[string]any{"name": " Ada ", "credit_limit": money(5000, "EUR")})
	})
	id, _ := r.Body["id"].(string)
	if r.Status != 201 || r.Body["name"] != "Ada" || r.Body["available_credit"].(map[string]any)["amount"].(float64) != 5000 ||
		len(evs) != 1 || evs[0].Type != "customers.customer_created.v1" || evs[0].Subject != id {
		t.Fatalf("create: %d %s, appended %+v", r.Status, r.Raw, evs)
	}
	if _, ok := r.Body["reservations"]; ok {
		t.Errorf("created customer lists reservations: %s", r.Raw)
	}
	g := a.API("GET", "/customers/"+id, nil)
	if g.Status != 200 || g.Body["credit_limit"].(map[string]any)["currency"] != "EUR" || len(g.Body["reservations"].([]any)) != 0 {
		t.Errorf("get: %d %s", g.Status, g.Raw)
	}
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"credit_limit": money(1, "EUR")}, "name"},
		{map[string]any{"name": "x"}, "credit_limit"},
		{map[string]any{"name": "x", "credit_limit": money(1, "EURO")}, "credit_limit"},
		{map[string]any{"name": "x", "credit_limit": money(-1, "EUR")}, "credit_limit"},
		{map[string]any{"name": "  ", "credit_limit": money(1, "EUR")}, "name"},
	} {
		if r := a.API("POST", "/customers", c.body); r.Status != 400 || r.Field(c.field) == nil {
			t.Errorf("%v: %d %s", c.body, r.Status, r.Raw)
		}
	}
	if r := a.API("GET", "/customers/"+uuid.NewString(), nil); r.Status != 404 || r.ErrorCode() != "customer_not_found" {
		t.Errorf("unknown: %d %s", r.Status, r.Raw)
	}
	if r := a.API("GET", "/customers/ada", nil); r.Status != 400 {
		t.Errorf("malformed id: %d %s", r.Status, r.Raw)
	}
}

// At most one reservation per order, whatever is redelivered: the same
// placement delivered again under another event id reserves nothing more;
// a rejection handled before its placement closes the order, and the
// placement then reserves nothing.
func TestAtMostOneReservationPerOrder(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	cust := a.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": money(1000, "EUR")}).Body["id"].(string)
	handle := handler(t, a)
	placed := func(order string, total int64) outbox.Delivery {
		return delivery(t, "orders.order_placed.v1", order, map[string]any{"order_id": order, "customer_id": cust, "total": money(total, "EUR")})
	}
	rejected := func(order string) outbox.Delivery {
		return delivery(t, "orders.order_rejected.v1", order, map[string]any{"order_id": order, "customer_id": cust, "total": money(0, "EUR")})
	}
	o1, o2 := uuid.NewString(), uuid.NewString()
	handle("customers_reserve_credit", placed(o1, 300))
	handle("customers_reserve_credit", placed(o1, 300))
	handle("customers_release_rejected", rejected(o2))
	handle("customers_reserve_credit", placed(o2, 300))
	g := a.API("GET", "/customers/"+cust, nil)
	var body struct {
		Available struct{ Amount int64 } `json:"available_credit"`
		Res       []struct {
			OrderID string `json:"order_id"`
			Status  string
		} `json:"reservations"`
	}
	_ = json.Unmarshal([]byte(g.Raw), &body)
	statuses := map[string]string{}
	for _, r := range body.Res {
		statuses[r.OrderID] = r.Status
	}
	if body.Available.Amount != 700 || len(body.Res) != 2 || statuses[o1] != "reserved" || statuses[o2] != "closed" {
		t.Errorf("after two placements of one order and a rejection before its placement: %s", g.Raw)
	}
	// Released once, however often the rejection comes.
	handle("customers_release_rejected", rejected(o1))
	handle("customers_release_rejected", rejected(o1))
	if n := a.Count(`SELECT reserved FROM customers.customers WHERE id = $1`, cust); n != 0 {
		t.Errorf("reserved %d after the release, want 0", n)
	}
	if n := len(a.Stream(outbox.PublicStream).OfType("customers.credit_released.v1")); n != 1 {
		t.Errorf("%d credit_released events, want 1", n)
	}
}

// handler returns a function that runs one of the app's consumers'
// handlers on a delivery, in a transaction of its own, as the runtime does
// (without its inbox, so that a redelivery under another id is what it
// sees).
func handler(t *testing.T, a *testenv.App) func(consumer string, d outbox.Delivery) {
	return func(consumer string, d outbox.Delivery) {
		t.Helper()
		for _, s := range a.Subscriptions() {
			if s.Consumer == consumer {
				if err := pgx.BeginFunc(context.Background(), a.DB.Pool, func(tx pgx.Tx) error { return s.Handle(context.Background(), tx, d) }); err != nil {
					t.Fatalf("%s: %v", consumer, err)
				}
				return
			}
		}
		t.Fatalf("no consumer %s", consumer)
	}
}

func delivery(t *testing.T, typ, key string, data any) outbox.Delivery {
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Delivery{Event: outbox.CloudEvent{SpecVersion: "1.0", ID: uuid.Must(uuid.NewV7()).String(), Type: typ,
		Subject: key, Time: time.Now().UTC(), DataContentType: "application/json", Data: raw}, Attempt: 1}
}
