package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// Items are added, restocked and repriced through the API, each change
// announced; bad input is 400 naming the field, a taken SKU 409, an
// unknown one 404.
func TestCatalogue(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	var r testenv.Response
	evs := a.Appended(func() {
		r = a.API("POST", "/inventory/items", map[string]any{"sku": "apple-1", "name": "Apple", "unit_price": money(150, "EUR"), "on_hand": 10})
	})
	if r.Status != 201 || r.Body["available"].(float64) != 10 || len(evs) != 1 || evs[0].Type != "inventory.item_added.v1" || evs[0].Subject != "apple-1" {
		t.Fatalf("add: %d %s, %+v", r.Status, r.Raw, evs)
	}
	if r := a.API("POST", "/inventory/items", map[string]any{"sku": "apple-1", "name": "Apple", "unit_price": money(1, "EUR"), "on_hand": 1}); r.Status != 409 || r.ErrorCode() != "sku_taken" {
		t.Errorf("add twice: %d %s", r.Status, r.Raw)
	}
	if r := a.API("POST", "/inventory/items/apple-1/restock", map[string]any{"quantity": 5}); r.Status != 200 || r.Body["on_hand"].(float64) != 15 {
		t.Errorf("restock: %d %s", r.Status, r.Raw)
	}
	evs = a.Appended(func() {
		r = a.API("POST", "/inventory/items/apple-1/price", map[string]any{"unit_price": money(175, "EUR")})
	})
	var pc struct{ Version int64 }
	if len(evs) == 1 {
		_ = json.Unmarshal(evs[0].Data, &pc)
	}
	if r.Status != 200 || len(evs) != 1 || evs[0].Type != "inventory.price_changed.v1" || pc.Version != 2 {
		t.Errorf("price: %d %s, %+v", r.Status, r.Raw, evs)
	}
	for _, c := range []struct {
		path  string
		body  any
		field string
	}{
		{"/inventory/items", map[string]any{"sku": "a b", "name": "x", "unit_price": money(1, "EUR"), "on_hand": 1}, "sku"},
		{"/inventory/items", map[string]any{"sku": "ab", "name": "x", "unit_price": money(0, "EUR"), "on_hand": 1}, "unit_price"},
		{"/inventory/items", map[string]any{"sku": "ab", "name": "x", "unit_price": money(1, "EUR"), "on_hand": -1}, "on_hand"},
		{"/inventory/items", map[string]any{"sku": "ab", "name": "x", "unit_price": money(1, "EUR")}, "on_hand"},
		{"/inventory/items/apple-1/restock", map[string]any{"quantity": 0}, "quantity"},
		{"/inventory/items/apple-1/price", map[string]any{"unit_price": money(5, "eur")}, "unit_price"},
	} {
		if r := a.API("POST", c.path, c.body); r.Status != 400 || r.Field(c.field) == nil {
			t.Errorf("%s %v: %d %s", c.path, c.body, r.Status, r.Raw)
		}
	}
	if r := a.API("GET", "/inventory/items/kiwi", nil); r.Status != 404 || r.ErrorCode() != "item_not_found" {
		t.Errorf("unknown: %d %s", r.Status, r.Raw)
	}
	if r := a.API("POST", "/inventory/items/kiwi/restock", map[string]any{"quantity": 1}); r.Status != 404 {
		t.Errorf("restock unknown: %d %s", r.Status, r.Raw)
	}
}

// The commands are idempotent per reservation id: a reserve repeated
// under another event id reserves once; a release answers every time and
// gives back once; a release before its reserve closes the reservation, so
// the reserve reserves nothing; a commit takes the units off on hand
// once; a reservation that cannot be met reserves nothing at all.
func TestCommandsAreIdempotentPerReservation(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{})
	for _, sku := range []string{"a", "b"} {
		if r := a.API("POST", "/inventory/items", map[string]any{"sku": sku, "name": sku, "unit_price": money(100, "EUR"), "on_hand": 10}); r.Status != 201 {
			t.Fatal(r.Raw)
		}
	}
	run := handler(t, a)
	stock := func(sku string) (int, int) {
		return a.Count(`SELECT on_hand FROM inventory.items WHERE sku = $1`, sku), a.Count(`SELECT reserved FROM inventory.items WHERE sku = $1`, sku)
	}
	lines := []map[string]any{{"sku": "a", "quantity": 3}, {"sku": "b", "quantity": 1}, {"sku": "a", "quantity": 1}}
	r1, r2, r3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	run("inventory_reserve_stock", "inventory.reserve_stock.v1", r1, map[string]any{"reservation_id": r1, "lines": lines})
	run("inventory_reserve_stock", "inventory.reserve_stock.v1", r1, map[string]any{"reservation_id": r1, "lines": lines})
	if on, res := stock("a"); on != 10 || res != 4 {
		t.Errorf("a after reserving twice: on hand %d reserved %d, want 10 4", on, res)
	}
	run("inventory_commit_stock", "inventory.commit_stock.v1", r1, map[string]any{"reservation_id": r1})
	run("inventory_commit_stock", "inventory.commit_stock.v1", r1, map[string]any{"reservation_id": r1})
	if on, res := stock("a"); on != 6 || res != 0 {
		t.Errorf("a after committing twice: %d %d, want 6 0", on, res)
	}
	run("inventory_release_stock", "inventory.release_stock.v1", r1, map[string]any{"reservation_id": r1})
	run("inventory_release_stock", "inventory.release_stock.v1", r1, map[string]any{"reservation_id": r1})
	if on, res := stock("a"); on != 10 || res != 0 {
		t.Errorf("a after releasing a committed reservation twice: %d %d, want 10 0", on, res)
	}
	run("inventory_release_stock", "inventory.release_stock.v1", r2, map[string]any{"reservation_id": r2})
	run("inventory_reserve_stock", "inventory.reserve_stock.v1", r2, map[string]any{"reservation_id": r2, "lines": lines})
	run("inventory_reserve_stock", "inventory.reserve_stock.v1", r3, map[string]any{"reservation_id": r3, "lines": []map[string]any{{"sku": "a", "quantity": 2}, {"sku": "b", "quantity": 11}}})
	if on, res := stock("a"); on != 10 || res != 0 {
		t.Errorf("a after a reserve behind its release and one that cannot be met: %d %d, want 10 0", on, res)
	}
	published := a.Stream(outbox.PublicStream)
	count := func(typ, key string) int { return len(published.OfType("inventory." + typ).OfKey(key)) }
	if count("stock_reserved.v1", r1) != 1 || count("stock_committed.v1", r1) != 1 || count("stock_released.v1", r1) != 2 ||
		count("stock_released.v1", r2) != 1 || count("stock_reserved.v1", r2) != 0 || count("stock_unavailable.v1", r3) != 1 {
		t.Errorf("answers: r1 reserved %d committed %d released %d; r2 released %d reserved %d; r3 unavailable %d",
			count("stock_reserved.v1", r1), count("stock_committed.v1", r1), count("stock_released.v1", r1),
			count("stock_released.v1", r2), count("stock_reserved.v1", r2), count("stock_unavailable.v1", r3))
	}
	// Each item's own trail: one level change per move that moved it
	// (reserved, committed, released), none for a repeat or a refusal.
	for _, sku := range []string{"a", "b"} {
		var moves []string
		for _, m := range published.OfType("inventory.stock_level_changed.v1").OfKey(sku) {
			var d struct{ Move string }
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			moves = append(moves, d.Move)
		}
		if fmt.Sprint(moves) != "[reserved committed released]" {
			t.Errorf("%s: level changes %v, want reserved, committed, released", sku, moves)
		}
	}
}

// handler runs one of the app's handlers on a command, in a transaction
// of its own and without the runtime's inbox: a repeat under another event
// id is what it sees.
func handler(t *testing.T, a *testenv.App) func(consumer, typ, key string, data any) {
	return func(consumer, typ, key string, data any) {
		t.Helper()
		raw, _ := json.Marshal(data)
		d := outbox.Delivery{Event: outbox.CloudEvent{SpecVersion: "1.0", ID: uuid.Must(uuid.NewV7()).String(), Type: typ,
			Subject: key, Time: time.Now().UTC(), DataContentType: "application/json", Data: raw}, Attempt: 1}
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
