package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/testenv"
)

// fixture is the whole of Cairn, as shipped, with a fake payment gateway
// (a real HTTP server in the test) and the step timeout given.
type ordersFixture struct {
	*testenv.App
	t  *testing.T
	gw *paymentstest.Gateway
}

const ordersAdminToken = "test-admin-token"

func newOrdersFixture(t *testing.T, stepTimeout time.Duration, more ...func(*config.Config)) *ordersFixture {
	t.Helper()
	return startOrdersFixture(t, 0, stepTimeout, more...)
}

// newOrdersLakeFixture is newOrdersFixture with published events moved
// into the lake 100 ms after their ack, for the lake's views of a flow.
func newOrdersLakeFixture(t *testing.T, stepTimeout time.Duration, more ...func(*config.Config)) *ordersFixture {
	t.Helper()
	return startOrdersFixture(t, 100*time.Millisecond, stepTimeout, more...)
}

// startOrdersFixture starts the fixture; deleteDelay 0 is testenv's
// default (an hour: nothing reaches the lake during a test).
func startOrdersFixture(t *testing.T, deleteDelay, stepTimeout time.Duration, more ...func(*config.Config)) *ordersFixture {
	t.Helper()
	gw := paymentstest.Start(t)
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: deleteDelay, Config: func(c *config.Config) {
		c.PaymentsURL = gw.URL
		c.OrdersStepTimeout = stepTimeout
		c.AdminToken = ordersAdminToken
		for _, m := range more {
			m(c)
		}
	}})
	f := &ordersFixture{App: a, t: t, gw: gw}
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(a.Logs(), "\n") {
				if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					t.Log(l)
				}
			}
		}
	})
	return f
}

func (f *ordersFixture) must(r testenv.Response, status int) testenv.Response {
	f.t.Helper()
	if r.Status != status {
		f.t.Fatalf("want %d, got %d %s", status, r.Status, r.Raw)
	}
	return r
}

func moneyJSON(amount int64, currency string) map[string]any {
	return map[string]any{"amount": amount, "currency": currency}
}

// customer registers a customer with a credit limit in EUR.
func (f *ordersFixture) customer(limit int64) string {
	f.t.Helper()
	r := f.must(f.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": moneyJSON(limit, "EUR")}), 201)
	return r.Body["id"].(string)
}

// item adds a SKU priced in EUR with stock on hand.
func (f *ordersFixture) item(sku string, price, onHand int64) {
	f.t.Helper()
	f.must(f.API("POST", "/inventory/items", map[string]any{"sku": sku, "name": "Item " + sku, "unit_price": moneyJSON(price, "EUR"), "on_hand": onHand}), 201)
}

// place places an order and returns its id.
func (f *ordersFixture) place(customer string, lines ...ordersLine) string {
	f.t.Helper()
	r := f.must(f.API("POST", "/orders", map[string]any{"customer_id": customer, "lines": lines}), 201)
	return r.Body["id"].(string)
}

// order is GET /orders/:id.
type orderView struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	History []struct {
		From  *string `json:"from"`
		To    string  `json:"to"`
		Cause string  `json:"cause"`
	} `json:"history"`
}

func (f *ordersFixture) order(id string) orderView {
	f.t.Helper()
	r := f.must(f.API("GET", "/orders/"+id, nil), 200)
	var o orderView
	if err := json.Unmarshal([]byte(r.Raw), &o); err != nil {
		f.t.Fatal(err)
	}
	return o
}

// await waits until the order has status (and, for a saga that still
// compensates late successes, until the app drained).
func (f *ordersFixture) await(id, status string, within time.Duration) orderView {
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
type sagaView struct {
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

func (f *ordersFixture) sagaRaw(id string) string {
	return f.API("GET", "/sagas/orders_fulfilment/"+id, nil).Raw
}

func (f *ordersFixture) saga(id string) sagaView {
	f.t.Helper()
	var s sagaView
	if err := json.Unmarshal([]byte(f.must(f.API("GET", "/sagas/orders_fulfilment/"+id, nil), 200).Raw), &s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// stock is GET /inventory/items/:sku.
func (f *ordersFixture) stock(sku string) (onHand, reserved, available int64) {
	f.t.Helper()
	r := f.must(f.API("GET", "/inventory/items/"+sku, nil), 200)
	return int64(r.Body["on_hand"].(float64)), int64(r.Body["reserved"].(float64)), int64(r.Body["available"].(float64))
}

// credit is the customer's available credit and its reservations' statuses
// by order.
func (f *ordersFixture) credit(customer string) (int64, map[string]string) {
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

// types lists the types of the events of one key published so far, both
// streams together, in the order they were appended.
func (f *ordersFixture) types(key string) []string {
	f.t.Helper()
	ms := append(f.Stream("EVENTS"), f.Stream("INTERNAL")...).OfKey(key)
	slices.SortStableFunc(ms, func(a, b testenv.Message) int { return a.Time.Compare(b.Time) })
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Type
	}
	return out
}

func (f *ordersFixture) sagaSummary(id string) string {
	s := f.saga(id)
	out := fmt.Sprintf("%s/%s:", s.State, s.Status)
	for _, h := range s.History {
		out += fmt.Sprintf(" [%s %s->%s by %s %s]", h.Kind, h.From, h.To, h.Cause.Type, h.Topology)
	}
	return out
}

// hold locks table in EXCLUSIVE mode in a transaction of the test's own
// until release is called: handlers that lock its rows (SELECT ... FOR
// UPDATE) wait, as behind a participant that hangs, while plain reads go
// on. A table lock takes no transaction id, so the relay, which publishes
// only below the oldest running writer, is not held back (a row lock would
// hold back every event of the app).
func (f *ordersFixture) hold(table string) (release func()) {
	f.t.Helper()
	ctx := context.Background()
	tx, err := f.DB.Pool.Begin(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var writer bool
	if _, err := tx.Exec(ctx, "LOCK TABLE "+table+" IN EXCLUSIVE MODE"); err != nil {
		f.t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id_if_assigned() IS NOT NULL`).Scan(&writer); err != nil || writer {
		f.t.Fatalf("the lock took a transaction id (%v): it would hold back the relay", err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = tx.Rollback(ctx)
		}
	}
	f.t.Cleanup(release)
	return release
}

// stopConsumer takes the lease of a consumer away from the app, as an
// operator or a longer outage would: the app's term ends at its next
// renewal (it then stands by) and nobody consumes until startConsumer; its
// events wait in NATS.
func (f *ordersFixture) stopConsumer(name string) {
	f.t.Helper()
	if _, err := f.DB.Pool.Exec(context.Background(), `UPDATE outbox.leases SET holder = 'test-outage', token = token + 1,
		expires_at = clock_timestamp() + interval '1 hour' WHERE name = $1`, "consumer:"+name); err != nil {
		f.t.Fatal(err)
	}
	f.waitFor(name+" to stop", 10*time.Second, func() bool {
		var st struct {
			Consumers []struct{ Consumer, State string }
		}
		if err := json.Unmarshal([]byte(f.must(f.API("GET", "/status", nil), 200).Raw), &st); err != nil {
			f.t.Fatal(err)
		}
		for _, c := range st.Consumers {
			if c.Consumer == name {
				return c.State == "standing_by"
			}
		}
		f.t.Fatalf("no consumer %s in the status", name)
		return false
	})
}

// startConsumer lets the app take the consumer's lease again.
func (f *ordersFixture) startConsumer(name string) {
	f.t.Helper()
	if _, err := f.DB.Pool.Exec(context.Background(), `UPDATE outbox.leases SET expires_at = clock_timestamp() - interval '1 second'
		WHERE name = $1`, "consumer:"+name); err != nil {
		f.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing after within.
func (f *ordersFixture) waitFor(what string, within time.Duration, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// index returns the position of each type in types (-1 if absent).
func typeIndex(types []string, want ...string) []int {
	out := make([]int, len(want))
	for i, w := range want {
		out[i] = slices.Index(types, w)
	}
	return out
}

// inOrder reports whether every type is present and they appear in order.
func inOrder(types []string, want ...string) bool {
	last := -1
	for _, i := range typeIndex(types, want...) {
		if i <= last {
			return false
		}
		last = i
	}
	return true
}
