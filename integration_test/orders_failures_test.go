package integration_test

import (
	"slices"
	"testing"
	"time"
)

// Credit refused: the order is rejected (credit_limit_exceeded) and
// nothing else happened: no stock reserved, no payment asked for.
func TestCreditRefusedRejects(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(100)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 1})
	o := f.await(id, "rejected", 10*time.Second)
	f.Drain()
	if o.Reason != "credit_limit_exceeded" {
		t.Errorf("reason %q", o.Reason)
	}
	avail, res := f.credit(c)
	_, reserved, _ := f.stock("apple")
	types := f.types(id)
	if avail != 100 || res[id] != "refused" || reserved != 0 || f.gw.Key(id).AuthorizeCalls != 0 ||
		slices.Contains(types, "inventory.reserve_stock.v1") || !inOrder(types, "orders.order_placed.v1", "orders.order_rejected.v1") {
		t.Errorf("credit %d %q, stock reserved %d, gateway %+v, events %v", avail, res[id], reserved, f.gw.Key(id), types)
	}
}

// Stock unavailable: the credit reserved for the order is released, then
// the order is rejected (out_of_stock); no payment was asked for.
func TestOutOfStockReleasesCredit(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 1)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 2})
	o := f.await(id, "rejected", 10*time.Second)
	f.Drain()
	avail, res := f.credit(c)
	on, reserved, _ := f.stock("apple")
	types := f.types(id)
	if o.Reason != "out_of_stock" || avail != 10_000 || res[id] != "released" || on != 1 || reserved != 0 || f.gw.Key(id).AuthorizeCalls != 0 ||
		!inOrder(types, "inventory.stock_unavailable.v1", "orders.order_rejected.v1") {
		t.Errorf("reason %q, credit %d %q, stock %d/%d, gateway %+v, events %v", o.Reason, avail, res[id], on, reserved, f.gw.Key(id), types)
	}
	credit := f.Stream("EVENTS").OfKey(c).OfType("customers.credit_released.v1")
	if len(credit) != 1 {
		t.Errorf("%d credit_released events, want 1", len(credit))
	}
}

// Payment declined: the stock is released, then the credit, in that
// order, and the order is rejected (payment_declined).
func TestPaymentDeclinedReleasesStockThenCredit(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	f.gw.DeclineAbove(100)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 2})
	o := f.await(id, "rejected", 10*time.Second)
	f.Drain()
	avail, res := f.credit(c)
	on, reserved, _ := f.stock("apple")
	if o.Reason != "payment_declined" || avail != 10_000 || res[id] != "released" || on != 10 || reserved != 0 {
		t.Errorf("reason %q, credit %d %q, stock %d/%d", o.Reason, avail, res[id], on, reserved)
	}
	if k := f.gw.Key(id); k.Status != "declined" || k.Authorizations != 0 {
		t.Errorf("gateway: %+v", k)
	}
	// One stream, EVENTS, in commit order: stock back before the
	// rejection, whose event makes customers release the credit.
	var order []string
	for _, m := range f.Stream("EVENTS") {
		if m.Subject == id || m.Subject == c {
			order = append(order, m.Type)
		}
	}
	if !inOrder(order, "payments.payment_declined.v1", "inventory.stock_released.v1", "orders.order_rejected.v1", "customers.credit_released.v1") {
		t.Errorf("events out of order: %v", order)
	}
}

// A participant silent past the step timeout: the payment gateway is
// down, so the payment step times out; the saga releases the stock and
// the credit and rejects the order (timeout). When the gateway comes back,
// the authorisation it then makes is a late success: the saga voids it.
func TestTimeoutCompensatesAndLatePaymentIsVoided(t *testing.T) {
	f := newOrdersFixture(t, time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.gw.SetDown(true)
	id := f.place(c, ordersLine{"apple", 2})
	o := f.await(id, "rejected", 10*time.Second)
	if o.Reason != "timeout" {
		t.Fatalf("reason %q", o.Reason)
	}
	if f.gw.Key(id).Authorizations != 0 {
		t.Fatal("the gateway authorised while down")
	}
	f.gw.SetDown(false)
	f.waitFor("the late authorisation to be voided", 30*time.Second, func() bool { return f.gw.Key(id).Voids == 1 })
	f.Drain()
	avail, res := f.credit(c)
	on, reserved, _ := f.stock("apple")
	k := f.gw.Key(id)
	if avail != 10_000 || res[id] != "released" || on != 10 || reserved != 0 || k.Authorizations != 1 || k.Status != "voided" {
		t.Errorf("credit %d %q, stock %d/%d, gateway %+v", avail, res[id], on, reserved, k)
	}
	if got := f.order(id); got.Status != "rejected" || got.Reason != "timeout" {
		t.Errorf("the late success changed the order: %+v", got)
	}
	t.Log(f.sagaSummary(id))
}

// Stock reserved after the saga gave up on it (the reserve waited behind a
// table lock past the timeout) is a late success: the saga releases it.
func TestLateStockIsReleased(t *testing.T) {
	f := newOrdersFixture(t, time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	release := f.hold("inventory.items")
	id := f.place(c, ordersLine{"apple", 2})
	o := f.await(id, "rejected", 10*time.Second)
	if o.Reason != "timeout" {
		t.Fatalf("reason %q", o.Reason)
	}
	if _, reserved, _ := f.stock("apple"); reserved != 0 {
		t.Fatal("stock reserved while its row was held")
	}
	release()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(f.types(id), "inventory.stock_released.v1") {
		if time.Now().After(deadline) {
			t.Fatalf("the late reservation was not released: %s; events %v", f.sagaSummary(id), f.types(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.Drain()
	on, reserved, _ := f.stock("apple")
	avail, _ := f.credit(c)
	if on != 10 || reserved != 0 || avail != 10_000 || !inOrder(f.types(id), "orders.order_rejected.v1", "inventory.stock_reserved.v1", "inventory.release_stock.v1", "inventory.stock_released.v1") {
		t.Errorf("stock %d/%d, credit %d, events %v", on, reserved, avail, f.types(id))
	}
	t.Log(f.sagaSummary(id))
}

// Credit reserved after the saga gave up on it: the customers module is
// down (nobody holds its consumers) past the timeout, so the order is
// rejected; when it comes back it reserves the credit (a late success the
// saga records) and then, on the order's rejection, releases it.
func TestLateCreditIsReleased(t *testing.T) {
	f := newOrdersFixture(t, time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	f.stopConsumer("customers_reserve_credit")
	f.stopConsumer("customers_release_rejected")
	id := f.place(c, ordersLine{"apple", 2})
	o := f.await(id, "rejected", 10*time.Second)
	if o.Reason != "timeout" {
		t.Fatalf("reason %q", o.Reason)
	}
	f.startConsumer("customers_reserve_credit")
	f.waitFor("the late reservation", 30*time.Second, func() bool {
		_, res := f.credit(c)
		return res[id] == "reserved"
	})
	f.startConsumer("customers_release_rejected")
	f.Drain()
	avail, res := f.credit(c)
	s := f.saga(id)
	late := false
	for _, h := range s.History {
		late = late || h.Cause.Type == "customers.credit_reserved.v1" && h.Kind == "noted"
	}
	if avail != 10_000 || res[id] != "released" || !late || s.State != "rejected" {
		t.Errorf("credit %d, reservation %q; saga %s", avail, res[id], f.sagaSummary(id))
	}
}

// A failure that arrives after the saga gave up has no effect: the
// gateway declines, but only after the step timed out; the order stays
// rejected for the timeout and the decline is recorded as stale.
func TestLateFailureIsIgnored(t *testing.T) {
	f := newOrdersFixture(t, time.Second)
	f.gw.DeclineAbove(0)
	f.gw.SetDelay(4 * time.Second) // well past the 1 s step timeout, however loaded the machine
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 2})
	f.await(id, "rejected", 10*time.Second)
	f.waitFor("the decline", 30*time.Second, func() bool { return f.gw.Key(id).Status == "declined" })
	f.Drain()
	o := f.order(id)
	s := f.saga(id)
	stale := false
	for _, h := range s.History {
		stale = stale || h.Cause.Type == "payments.payment_declined.v1" && h.Kind == "stale"
	}
	if o.Reason != "timeout" || len(o.History) != 2 || !stale || s.State != "rejected" {
		t.Errorf("order %+v; saga %s", o, f.sagaSummary(id))
	}
}
