package integration_test

import (
	"testing"
	"time"
)

// An order whose credit, stock and payment are all there is approved: the
// credit stays reserved, the units leave the warehouse, the gateway holds
// one authorisation; the saga's history shows the customers module's own
// reaction (choreography) and the replies to the saga's commands
// (orchestration).
func TestOrderIsApproved(t *testing.T) {
	f := newOrdersFixture(t, 30*time.Second)
	c := f.customer(10_000)
	f.item("apple", 150, 10)
	f.item("pear", 200, 5)
	f.Drain()
	r := f.must(f.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []ordersLine{{"apple", 2}, {"pear", 1}}}), 201)
	id := r.Body["id"].(string)
	if r.Body["status"] != "pending" || r.Body["total"].(map[string]any)["amount"].(float64) != 500 {
		t.Fatalf("placed: %s", r.Raw)
	}
	o := f.await(id, "approved", 10*time.Second)
	f.Drain()
	if avail, res := f.credit(c); avail != 9_500 || res[id] != "reserved" {
		t.Errorf("credit: available %d, reservation %q; want 9500, reserved", avail, res[id])
	}
	if on, res, _ := f.stock("apple"); on != 8 || res != 0 {
		t.Errorf("apple: on hand %d reserved %d; want 8, 0", on, res)
	}
	if k := f.gw.Key(id); k.Authorizations != 1 || k.Status != "authorized" || k.Amount != 500 {
		t.Errorf("gateway: %+v", k)
	}
	if len(o.History) != 2 || o.History[0].From != nil || o.History[1].To != "approved" {
		t.Errorf("history: %+v", o.History)
	}
	s := f.saga(id)
	topologies := map[string]string{}
	for _, h := range s.History {
		topologies[h.Cause.Type] = h.Topology
	}
	if s.State != "approved" || s.Status != "completed" ||
		topologies["customers.credit_reserved.v1"] != "choreography" ||
		topologies["inventory.stock_reserved.v1"] != "orchestration" ||
		topologies["payments.payment_authorized.v1"] != "orchestration" {
		t.Errorf("saga: %s", f.sagaSummary(id))
	}
	t.Log(f.sagaSummary(id))
}
