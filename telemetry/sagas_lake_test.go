package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/testenv"
)

const (
	sagaRunning = `cairn_saga_instances{status="running",type="orders_fulfilment"}`
	sagaStuck   = `cairn_saga_instances{status="stuck",type="orders_fulfilment"}`
	timerAge    = "cairn_saga_timers_oldest_due_age_seconds"
	unmoved     = "cairn_lake_unmoved_events"
	exportedAt  = "cairn_lake_export_last_success_timestamp_seconds"
)

// The saga and lake figures move with the real thing. An approved order's
// saga is finished; cancelled while the payment gateway is down, it runs
// again, voiding. While its instance is locked (as by a slow step) its
// compensation timer comes due and waits: the oldest due timer ages. Let
// go, the timer fires, again and again unanswered, until the saga is
// stuck. While the lake refuses rows (every move fails) published events
// pile up outside it; once it takes them again, they move in. The export,
// every second here, keeps its success time moving.
func TestMetricsFollowSagasAndTheLake(t *testing.T) {
	gw := paymentstest.Start(t)
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: 200 * time.Millisecond, Config: func(c *config.Config) {
		c.PaymentsURL, c.OrdersStepTimeout, c.LakeExportInterval = gw.URL, 2*time.Second, time.Second
	}})
	ctx := context.Background()
	customer := a.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": map[string]any{"amount": 10_000, "currency": "EUR"}})
	item := a.API("POST", "/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": map[string]any{"amount": 150, "currency": "EUR"}, "on_hand": 10})
	if customer.Status != 201 || item.Status != 201 {
		t.Fatalf("customer %d %s, item %d %s", customer.Status, customer.Raw, item.Status, item.Raw)
	}
	a.Drain()
	order := a.API("POST", "/orders", map[string]any{"customer_id": customer.Body["id"], "lines": []map[string]any{{"sku": "apple", "quantity": 2}}})
	if order.Status != 201 {
		t.Fatalf("order: %d %s", order.Status, order.Raw)
	}
	id := order.Body["id"].(string)
	sagaState := func() (state, status string) {
		_ = a.DB.Pool.QueryRow(ctx, `SELECT state, status FROM saga.instances WHERE saga_type = 'orders_fulfilment' AND id = $1`, id).Scan(&state, &status)
		return state, status
	}
	waitUntil(t, "the order approved", func() bool { _, st := sagaState(); return st == "completed" })
	waitScrape(t, a.URL, "no saga running", func(s scrape) bool { return s.is(sagaRunning, 0) && s.is(sagaStuck, 0) && s.is(timerAge, 0) })

	gw.SetDown(true)
	if r := a.API("POST", "/orders/"+id+"/cancel", nil); r.Status != 202 {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	waitUntil(t, "the saga voiding the payment", func() bool { state, _ := sagaState(); return state == "voiding_payment" })
	tx, err := a.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM saga.instances WHERE saga_type = 'orders_fulfilment' AND id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}
	waitScrape(t, a.URL, "one saga running and its timer overdue", func(s scrape) bool { return s[sagaRunning] == 1 && s[timerAge] >= 1 })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	waitScrape(t, a.URL, "the saga stuck, no timer due", func(s scrape) bool {
		return s[sagaStuck] == 1 && s.is(sagaRunning, 0) && s.is(timerAge, 0)
	})

	first := waitScrape(t, a.URL, "a lake export", func(s scrape) bool { return s[exportedAt] > 0 }).get(t, exportedAt)
	waitScrape(t, a.URL, "nothing left to move into the lake", func(s scrape) bool { return s.is(unmoved, 0) })
	// Every move fails (as on a full disk) while lake.ids refuses rows:
	// the mover retries with a backoff, holding nothing meanwhile.
	for _, sql := range []string{
		`CREATE FUNCTION public.refuse_moves() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`,
		`CREATE TRIGGER refuse_moves BEFORE INSERT ON lake.ids FOR EACH ROW EXECUTE FUNCTION public.refuse_moves()`,
	} {
		if _, err := a.DB.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if r := a.API("POST", "/customers", map[string]any{"name": "Bo", "credit_limit": map[string]any{"amount": 1, "currency": "EUR"}}); r.Status != 201 {
			t.Fatalf("customer: %d %s", r.Status, r.Raw)
		}
	}
	waitScrape(t, a.URL, "published events held out of the lake", func(s scrape) bool {
		return s.is("cairn_outbox_backlog_events", 0) && s[unmoved] >= 3
	})
	if _, err := a.DB.Pool.Exec(ctx, `DROP TRIGGER refuse_moves ON lake.ids`); err != nil {
		t.Fatal(err)
	}
	waitScrape(t, a.URL, "the events moved into the lake", func(s scrape) bool { return s.is(unmoved, 0) })
	waitScrape(t, a.URL, "a later lake export", func(s scrape) bool { return s[exportedAt] > first })
}

// waitUntil polls ok for at most 30 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
	}
}

// is reports whether the scrape has the series key, at v.
func (s scrape) is(key string, v float64) bool {
	got, ok := s[key]
	return ok && got == v
}
