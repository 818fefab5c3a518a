package reporting_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/outbox/projection"
)

// history makes the public events of n orders as the modules would
// publish them (customers, items, restocks, the saga's credit, stock and
// payment outcomes, the orders' closing events) and of a ledger, in the
// order they happened, with the same payloads as the modules' contracts.
// Deterministic for a seed.
func history(seed uint64, n int) []projection.Event {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	at := time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	var out []projection.Event
	emit := func(typ, subject string, data map[string]any) {
		at = at.Add(time.Duration(1+rng.IntN(90_000)) * time.Millisecond) // ~45 s apart: several days
		raw, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		id := uuid.Must(uuid.NewV7())
		out = append(out, projection.Event{ID: id.String(), Type: typ, Subject: subject, Time: at.Format(time.RFC3339Nano), Data: raw})
	}
	money := func(a int64, c string) map[string]any { return map[string]any{"amount": a, "currency": c} }
	currencies := []string{"EUR", "USD"}
	type item struct {
		sku      string
		price    int64
		currency string
		version  int64
	}
	var items []*item
	for i := range 12 {
		it := &item{sku: fmt.Sprintf("sku-%02d", i), price: int64(100 + rng.IntN(900)), currency: currencies[i%2]}
		items = append(items, it)
		emit("inventory.item_added.v1", it.sku, map[string]any{"sku": it.sku, "name": "Item " + it.sku,
			"unit_price": money(it.price, it.currency), "on_hand": 1000, "version": 0})
	}
	var customers []string
	for i := range 40 {
		id := uuid.Must(uuid.NewV7()).String()
		customers = append(customers, id)
		emit("customers.customer_created.v1", id, map[string]any{"customer_id": id, "name": fmt.Sprintf("Customer %d", i),
			"credit_limit": money(1_000_000, currencies[i%2]), "created_at": at})
	}
	accounts := map[string]int64{}
	var accountIDs []string
	for i := 0; i < n; i++ {
		if rng.IntN(10) == 0 { // now and then the catalogue changes
			it := items[rng.IntN(len(items))]
			if rng.IntN(2) == 0 {
				it.version++
				it.price += int64(rng.IntN(50))
				emit("inventory.price_changed.v1", it.sku, map[string]any{"sku": it.sku, "unit_price": money(it.price, it.currency), "version": it.version})
			} else {
				emit("inventory.restocked.v1", it.sku, map[string]any{"sku": it.sku, "quantity": 1 + rng.IntN(20), "on_hand": 0})
			}
		}
		if rng.IntN(4) == 0 { // and the ledger moves
			if len(accountIDs) == 0 || rng.IntN(5) == 0 {
				id := uuid.Must(uuid.NewV7()).String()
				accountIDs = append(accountIDs, id)
				emit("ledger.account_opened.v1", id, map[string]any{"account_id": id, "owner": "o", "currency": currencies[rng.IntN(2)],
					"balance": 0, "version": 0, "occurred_at": at})
			} else {
				id := accountIDs[rng.IntN(len(accountIDs))]
				accounts[id]++
				typ := "ledger.deposited.v1"
				if rng.IntN(3) == 0 {
					typ = "ledger.withdrawn.v1"
				}
				emit(typ, id, map[string]any{"account_id": id, "amount": 1 + rng.IntN(10_000), "currency": "EUR", "balance": 0,
					"version": accounts[id], "occurred_at": at})
			}
		}
		order := uuid.Must(uuid.NewV7()).String()
		cust := customers[rng.IntN(len(customers))]
		cur := currencies[rng.IntN(2)]
		var lines, stock []map[string]any
		var total int64
		for _, k := range rng.Perm(len(items))[:1+rng.IntN(3)] {
			it := items[k]
			if it.currency != cur {
				continue
			}
			q := int64(1 + rng.IntN(5))
			lines = append(lines, map[string]any{"sku": it.sku, "quantity": q, "unit_price": money(it.price, cur)})
			stock = append(stock, map[string]any{"sku": it.sku, "quantity": q})
			total += q * it.price
		}
		if len(lines) == 0 {
			i--
			continue
		}
		emit("orders.order_placed.v1", order, map[string]any{"order_id": order, "customer_id": cust, "lines": lines,
			"total": money(total, cur), "placed_at": at})
		credit := map[string]any{"customer_id": cust, "order_id": order, "amount": money(total, cur), "available": money(0, cur)}
		closed := func(typ, reason string) {
			d := map[string]any{"order_id": order, "customer_id": cust, "total": money(total, cur)}
			if reason != "" {
				d["reason"] = reason
			}
			emit(typ, order, d)
		}
		pay := map[string]any{"payment_id": order, "amount": money(total, cur), "authorization_id": "auth-" + order[:8]}
		switch outcome := rng.IntN(10); {
		case outcome < 6: // approved
			emit("customers.credit_reserved.v1", cust, credit)
			emit("inventory.stock_reserved.v1", order, map[string]any{"reservation_id": order, "lines": stock})
			emit("payments.payment_authorized.v1", order, pay)
			emit("inventory.stock_committed.v1", order, map[string]any{"reservation_id": order, "lines": stock})
			closed("orders.order_approved.v1", "")
			if rng.IntN(8) == 0 { // cancelled after approval: stock back, payment voided
				emit("inventory.stock_released.v1", order, map[string]any{"reservation_id": order, "lines": stock})
				emit("payments.payment_voided.v1", order, pay)
				emit("customers.credit_released.v1", cust, credit)
				closed("orders.order_cancelled.v1", "customer_request")
			}
		case outcome < 7: // credit refused
			emit("customers.credit_limit_exceeded.v1", cust, credit)
			closed("orders.order_rejected.v1", "credit_limit_exceeded")
		case outcome < 8: // out of stock
			emit("customers.credit_reserved.v1", cust, credit)
			emit("inventory.stock_unavailable.v1", order, map[string]any{"reservation_id": order, "short": []any{}})
			emit("customers.credit_released.v1", cust, credit)
			closed("orders.order_rejected.v1", "out_of_stock")
		case outcome < 9: // payment declined
			emit("customers.credit_reserved.v1", cust, credit)
			emit("inventory.stock_reserved.v1", order, map[string]any{"reservation_id": order, "lines": stock})
			pay["reason"] = "insufficient_funds"
			emit("payments.payment_declined.v1", order, pay)
			emit("inventory.stock_released.v1", order, map[string]any{"reservation_id": order, "lines": stock})
			emit("customers.credit_released.v1", cust, credit)
			closed("orders.order_rejected.v1", "payment_declined")
		default: // still under way
			emit("customers.credit_reserved.v1", cust, credit)
			if rng.IntN(2) == 0 {
				emit("inventory.stock_reserved.v1", order, map[string]any{"reservation_id": order, "lines": stock})
			}
		}
	}
	return out
}
