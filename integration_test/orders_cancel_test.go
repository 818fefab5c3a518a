package integration_test

import (
	"testing"
	"time"
)

// Cancel while pending (the payment gateway is down, so the payment step
// is under way): the stock is released, the order cancelled, the credit
// released; the authorisation the gateway makes once it is back is voided.
func TestCancelPendingOrder(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.gw.SetDown(true)
	id := f.place(c, ordersLine{"apple", 2})
	f.waitFor("the payment step", 10*time.Second, func() bool { return f.saga(id).State == "authorizing_payment" })
	r := f.must(f.API("POST", "/orders/"+id+"/cancel", nil), 202)
	if r.Body["status"] != "pending" || r.Body["cancel_requested"] != true {
		t.Fatalf("cancel: %s", r.Raw)
	}
	o := f.await(id, "cancelled", 10*time.Second)
	f.gw.SetDown(false)
	f.waitFor("the late authorisation to be voided", 30*time.Second, func() bool { return f.gw.Key(id).Voids == 1 })
	f.Drain()
	avail, res := f.credit(c)
	on, reserved, _ := f.stock("apple")
	if o.Reason != "cancelled_by_customer" || avail != 10_000 || res[id] != "released" || on != 10 || reserved != 0 || f.gw.Key(id).Status != "voided" {
		t.Errorf("reason %q, credit %d %q, stock %d/%d, gateway %+v", o.Reason, avail, res[id], on, reserved, f.gw.Key(id))
	}
}

// Cancel after approval: the payment is voided, the stock goes back on
// hand, the order is cancelled and the credit released, in that order.
// Cancelling again is 409 order_final.
func TestCancelApprovedOrder(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 2})
	f.await(id, "approved", 10*time.Second)
	f.Drain()
	if on, _, _ := f.stock("apple"); on != 8 {
		t.Fatalf("approved: on hand %d, want 8", on)
	}
	f.must(f.API("POST", "/orders/"+id+"/cancel", nil), 202)
	f.must(f.API("POST", "/orders/"+id+"/cancel", nil), 202) // asked twice: one cancellation
	o := f.await(id, "cancelled", 10*time.Second)
	f.Drain()
	avail, res := f.credit(c)
	on, reserved, _ := f.stock("apple")
	k := f.gw.Key(id)
	if o.Reason != "cancelled_by_customer" || avail != 10_000 || res[id] != "released" || on != 10 || reserved != 0 || k.Status != "voided" || k.Voids != 1 {
		t.Errorf("reason %q, credit %d %q, stock %d/%d, gateway %+v", o.Reason, avail, res[id], on, reserved, k)
	}
	var order []string
	for _, m := range f.Stream("EVENTS") {
		if m.Subject == id || m.Subject == c {
			order = append(order, m.Type)
		}
	}
	if !inOrder(order, "orders.order_approved.v1", "payments.payment_voided.v1", "inventory.stock_released.v1", "orders.order_cancelled.v1", "customers.credit_released.v1") {
		t.Errorf("compensation out of order: %v", order)
	}
	if n := len(f.Stream("INTERNAL").OfKey(id).OfType("orders.cancellation_requested.v1")); n != 1 {
		t.Errorf("%d cancellation requests, want 1", n)
	}
	if r := f.API("POST", "/orders/"+id+"/cancel", nil); r.Status != 409 || r.ErrorCode() != "order_final" {
		t.Errorf("cancel a cancelled order: %d %s", r.Status, r.Raw)
	}
	if r := f.API("POST", "/orders/01a22ec9-d42d-7adf-a89f-44ff7bda7b0a/cancel", nil); r.Status != 404 || r.ErrorCode() != "order_not_found" {
		t.Errorf("cancel an unknown order: %d %s", r.Status, r.Raw)
	}
}

// A rejected order cannot be cancelled.
func TestCancelRejectedOrderIsRefused(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 1})
	f.await(id, "rejected", 10*time.Second)
	evs := f.Appended(func() {
		if r := f.API("POST", "/orders/"+id+"/cancel", nil); r.Status != 409 || r.ErrorCode() != "order_final" {
			t.Errorf("cancel a rejected order: %d %s", r.Status, r.Raw)
		}
	})
	if len(evs) != 0 {
		t.Errorf("a refused cancel appended %d events", len(evs))
	}
}
