package orders_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/testenv"
)

// fixture is the whole of Cairn, as shipped, with a fake payment gateway
// (a real HTTP server in the test) and the step timeout given.
type fixture struct {
	*testenv.App
	t  *testing.T
	gw *paymentstest.Gateway
}

const adminToken = "test-admin-token"

func newFixture(t *testing.T, stepTimeout time.Duration) *fixture {
	t.Helper()
	gw := paymentstest.Start(t)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.PaymentsURL = gw.URL
		c.OrdersStepTimeout = stepTimeout
		c.AdminToken = adminToken
	}})
	return &fixture{App: a, t: t, gw: gw}
}

func (f *fixture) must(r testenv.Response, status int) testenv.Response {
	f.t.Helper()
	if r.Status != status {
		f.t.Fatalf("want %d, got %d %s", status, r.Status, r.Raw)
	}
	return r
}

func money(amount int64, currency string) map[string]any {
	return map[string]any{"amount": amount, "currency": currency}
}

// customer registers a customer with a credit limit in EUR.
func (f *fixture) customer(limit int64) string {
	f.t.Helper()
	r := f.must(f.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": money(limit, "EUR")}), 201)
	return r.Body["id"].(string)
}

// item adds a SKU priced in EUR with stock on hand.
func (f *fixture) item(sku string, price, onHand int64) {
	f.t.Helper()
	f.must(f.API("POST", "/inventory/items", map[string]any{"sku": sku, "name": "Item " + sku, "unit_price": money(price, "EUR"), "on_hand": onHand}), 201)
}

type line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// place places an order and returns its id.
func (f *fixture) place(customer string, lines ...line) string {
	f.t.Helper()
	r := f.must(f.API("POST", "/orders", map[string]any{"customer_id": customer, "lines": lines}), 201)
	return r.Body["id"].(string)
}

// order is GET /orders/:id.
type order struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	History []struct {
		From  *string `json:"from"`
		To    string  `json:"to"`
		Cause string  `json:"cause"`
	} `json:"history"`
}

func (f *fixture) order(id string) order {
	f.t.Helper()
	r := f.must(f.API("GET", "/orders/"+id, nil), 200)
	var o order
	if err := json.Unmarshal([]byte(r.Raw), &o); err != nil {
		f.t.Fatal(err)
	}
	return o
}

// await waits until the order has status (and, for a saga that still
// compensates late successes, until the app drained).
func (f *fixture) await(id, status string, within time.Duration) order {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		o := f.order(id)
		if o.Status == status {
			return o
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("order %s is %s (%s) after %s, want %s; saga: %s", id, o.Status, o.Reason, within, status, f.sagaRaw(id))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// saga is GET /sagas/orders_fulfilment/:id.
type saga struct {
	State   string          `json:"state"`
	Status  string          `json:"status"`
	Version int64           `json:"version"`
	Data    json.RawMessage `json:"data"`
	History []struct {
		Kind  string `json:"kind"`
		From  string `json:"from"`
		To    string `json:"to"`
		Cause struct {
			Type string `json:"type"`
		} `json:"cause"`
		Topology string `json:"topology"`
		Sent     []struct {
			Type string `json:"type"`
		} `json:"sent"`
		Note string `json:"note"`
	} `json:"history"`
	Timers []struct {
		Name  string `json:"name"`
		Stale bool   `json:"stale"`
	} `json:"timers"`
}

func (f *fixture) sagaRaw(id string) string {
	return f.API("GET", "/sagas/orders_fulfilment/"+id, nil).Raw
}

func (f *fixture) saga(id string) saga {
	f.t.Helper()
	var s saga
	if err := json.Unmarshal([]byte(f.must(f.API("GET", "/sagas/orders_fulfilment/"+id, nil), 200).Raw), &s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// stock is GET /inventory/items/:sku.
func (f *fixture) stock(sku string) (onHand, reserved, available int64) {
	f.t.Helper()
	r := f.must(f.API("GET", "/inventory/items/"+sku, nil), 200)
	return int64(r.Body["on_hand"].(float64)), int64(r.Body["reserved"].(float64)), int64(r.Body["available"].(float64))
}

// credit is the customer's available credit and its reservations' statuses
// by order.
func (f *fixture) credit(customer string) (int64, map[string]string) {
	f.t.Helper()
	r := f.must(f.API("GET", "/customers/"+customer, nil), 200)
	avail := int64(r.Body["available_credit"].(map[string]any)["amount"].(float64))
	res := map[string]string{}
	for _, x := range r.Body["reservations"].([]any) {
		m := x.(map[string]any)
		res[m["order_id"].(string)] = m["status"].(string)
	}
	return avail, res
}

// types lists the types of the events of one key published so far, in
// stream order, both streams together by publication time.
func (f *fixture) types(key string) []string {
	f.t.Helper()
	var out []string
	for _, m := range append(f.Stream("EVENTS"), f.Stream("INTERNAL")...).OfKey(key) {
		out = append(out, m.Type)
	}
	return out
}

func (f *fixture) sagaSummary(id string) string {
	s := f.saga(id)
	out := fmt.Sprintf("%s/%s:", s.State, s.Status)
	for _, h := range s.History {
		out += fmt.Sprintf(" [%s %s->%s by %s %s]", h.Kind, h.From, h.To, h.Cause.Type, h.Topology)
	}
	return out
}
