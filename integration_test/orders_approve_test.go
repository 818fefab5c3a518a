package integration_test

import (
	"encoding/json"
	"testing"
	"time"
)

// An order whose credit, stock and payment are all there is approved: the
// credit stays reserved, the units leave the warehouse, the gateway holds
// one authorisation; the saga's history shows the customers module's own
// reaction (choreography) and the replies to the saga's commands
// (orchestration), and so does the lake's lineage of the placement.
func TestOrderIsApproved(t *testing.T) {
	f := newOrdersLakeFixture(t, 30*time.Second)
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
	f.lineageShowsBothTopologies(id)
}

// lakeItem is an item of the lake's lineage: the CloudEvent in "event".
type lakeItem struct {
	Event struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		CausationID string `json:"causationid"`
	} `json:"event"`
}

// lineageShowsBothTopologies checks the lake's lineage of the order's
// placement: among its effects the customers module's credit_reserved,
// caused by the placement itself (choreography), and stock_reserved and
// payment_authorized, each caused by a command of the saga that is itself
// an effect (orchestration). It waits for the events to be moved into the
// lake.
func (f *ordersFixture) lineageShowsBothTopologies(order string) {
	f.t.Helper()
	placed := f.Stream("EVENTS").OfKey(order).OfType("orders.order_placed.v1")
	if len(placed) != 1 {
		f.t.Fatalf("%d orders.order_placed.v1 for %s", len(placed), order)
	}
	var lin struct{ Effects []lakeItem }
	byType := map[string]lakeItem{}
	byID := map[string]lakeItem{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := f.API("GET", "/lake/events/"+placed[0].ID+"/lineage", nil, "Authorization", "Bearer "+ordersAdminToken)
		if r.Status == 200 {
			if err := json.Unmarshal([]byte(r.Raw), &lin); err != nil {
				f.t.Fatal(err)
			}
			for _, e := range lin.Effects {
				byType[e.Event.Type], byID[e.Event.ID] = e, e
			}
			if _, done := byType["payments.payment_authorized.v1"]; done {
				break
			}
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("lineage of the placement after 30 s: %d, effects %v", r.Status, effectTypes(lin.Effects))
		}
	}
	if c, ok := byType["customers.credit_reserved.v1"]; !ok || c.Event.CausationID != placed[0].ID {
		f.t.Errorf("choreography: no customers.credit_reserved.v1 caused by the placement among the effects %v", effectTypes(lin.Effects))
	}
	for reply, command := range map[string]string{
		"inventory.stock_reserved.v1":    "inventory.reserve_stock.v1",
		"payments.payment_authorized.v1": "payments.authorize_payment.v1",
	} {
		if e, ok := byType[reply]; !ok || byID[e.Event.CausationID].Event.Type != command {
			f.t.Errorf("orchestration: no %s caused by the saga's %s among the effects %v", reply, command, effectTypes(lin.Effects))
		}
	}
}

func effectTypes(items []lakeItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Event.Type
	}
	return out
}
