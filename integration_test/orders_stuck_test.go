package integration_test

import (
	"testing"
	"time"
)

// A compensation that keeps failing (the gateway refuses to void) makes
// the saga stuck: listed as stuck, its order still approved with the
// cancel pending, nothing dropped. Once the gateway voids again, an
// operator's retry (admin token) sends the void again and the saga
// finishes the cancellation.
func TestStuckCompensationIsRetriedByAnOperator(t *testing.T) {
	f := newOrdersFixture(t, time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.Drain()
	id := f.place(c, ordersLine{"apple", 2})
	f.await(id, "approved", 10*time.Second)
	f.gw.RefuseVoids(true)
	f.must(f.API("POST", "/orders/"+id+"/cancel", nil), 202)
	f.waitFor("the saga to be stuck", 30*time.Second, func() bool { return f.saga(id).Status == "stuck" })

	list := f.must(f.API("GET", "/sagas?type=orders_fulfilment&status=stuck", nil), 200)
	if sagas := list.Body["sagas"].([]any); len(sagas) != 1 || sagas[0].(map[string]any)["id"] != id {
		t.Fatalf("stuck sagas: %s", list.Raw)
	}
	if o := f.order(id); o.Status != "approved" {
		t.Fatalf("order %s while its cancellation is stuck", o.Status)
	}
	// Every void sent is refused and, after its attempts, parked; none is
	// left to succeed on its own once the gateway is fixed.
	voids := 0
	for _, h := range f.saga(id).History {
		for _, s := range h.Sent {
			if s.Type == "payments.void_payment.v1" {
				voids++
			}
		}
	}
	f.waitFor("every void to be parked", 60*time.Second, func() bool {
		return f.Count(`SELECT count(*) FROM inbox.dead_letters WHERE consumer = 'payments_void'`) == voids
	})
	if voids != 5 {
		t.Errorf("%d voids sent, want 5 (maxCompensationAttempts)", voids)
	}
	f.gw.RefuseVoids(false)

	retry := "/admin/sagas/orders_fulfilment/" + id + "/retry"
	if r := f.API("POST", retry, nil); r.Status != 401 {
		t.Errorf("retry without the token: %d %s", r.Status, r.Raw)
	}
	r := f.must(f.API("POST", retry, nil, "Authorization", "Bearer "+ordersAdminToken), 200)
	if r.Body["status"] != "running" {
		t.Errorf("after retry: %s", r.Raw)
	}
	o := f.await(id, "cancelled", 20*time.Second)
	f.Drain()
	avail, _ := f.credit(c)
	on, reserved, _ := f.stock("apple")
	if o.Reason != "cancelled_by_customer" || avail != 10_000 || on != 10 || reserved != 0 || f.gw.Key(id).Status != "voided" {
		t.Errorf("reason %q, credit %d, stock %d/%d, gateway %+v", o.Reason, avail, on, reserved, f.gw.Key(id))
	}
	if r := f.API("POST", retry, nil, "Authorization", "Bearer "+ordersAdminToken); r.Status != 409 || r.ErrorCode() != "saga_not_stuck" {
		t.Errorf("retry of a completed saga: %d %s", r.Status, r.Raw)
	}
	t.Log(f.sagaSummary(id))
}
