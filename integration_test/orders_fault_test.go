package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// The shape of the fault run. Poor customers' credit covers no order
// (about 20 % refused for credit); two SKUs have no stock (about 10 % out
// of stock); one SKU costs more than the gateway authorises (about 5 %
// declined). Every 20th order is cancelled a moment after it is placed.
const (
	faultOrders        = 1000
	faultRichCustomers = 40
	faultPoorCustomers = 10
	faultNormalSKUs    = 17
	faultStepTimeout   = 5 * time.Second
	faultDeclineAbove  = 50_000
	faultLoadFor       = 80 * time.Second // the orders are spread over this
)

// TestOrdersFaultRun places 1,000 orders over 50 customers and 20 SKUs
// through the real binary while it is killed with kill -9 twice, NATS is
// down for 30 s, and the payment gateway (a real HTTP server in the test)
// is down for longer than the step timeout. Then every order is final and
// the books balance: per customer, reserved credit is the sum of its
// approved orders and available credit the limit minus that; per SKU,
// initial stock plus restocks is on hand plus the units of approved
// orders; every approved order has exactly one authorised, unvoided
// payment at the gateway, and no rejected or cancelled order keeps a
// reservation or a payment. It prints the sums.
func TestOrdersFaultRun(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	gw := paymentstest.Start(t)
	gw.DeclineAbove(faultDeclineAbove)
	env := externalEnv(db, nt)
	env["CAIRN_PAYMENTS_URL"] = gw.URL
	env["CAIRN_ORDERS_STEP_TIMEOUT"] = faultStepTimeout.String()
	var procMu sync.Mutex
	proc := startCairn(t, env)
	api := newOrdersAPI(proc.HTTP, "")
	restart := func(what string) {
		procMu.Lock()
		defer procMu.Unlock()
		proc.Kill9()
		t.Logf("%s: kill -9 of cairn (pid %d)", what, proc.Pid())
		proc = startCairn(t, env)
		api.point(proc.HTTP)
		t.Logf("%s: cairn is up again (pid %d)", what, proc.Pid())
	}

	// The world: customers and SKUs, through the API.
	limits := map[string]int64{}
	var rich, poor []string
	for i := range faultRichCustomers + faultPoorCustomers {
		limit := int64(1_000_000)
		if i >= faultRichCustomers {
			limit = 100
		}
		var c struct{ ID string }
		api.must(t, 201, "POST", "/customers", map[string]any{"name": fmt.Sprintf("customer %d", i), "credit_limit": eur(limit)}, &c)
		limits[c.ID] = limit
		if i < faultRichCustomers {
			rich = append(rich, c.ID)
		} else {
			poor = append(poor, c.ID)
		}
	}
	initial := map[string]int64{}
	var normal []string
	addSKU := func(sku string, price, onHand int64) {
		api.must(t, 201, "POST", "/inventory/items", map[string]any{"sku": sku, "name": sku, "unit_price": eur(price), "on_hand": onHand}, nil)
		initial[sku] = onHand
	}
	for i := range faultNormalSKUs {
		sku := fmt.Sprintf("sku-%02d", i)
		addSKU(sku, int64(100+100*i), 10_000)
		normal = append(normal, sku)
	}
	addSKU("empty-1", 500, 0)
	addSKU("empty-2", 700, 0)
	addSKU("lux", faultDeclineAbove+10_000, 100_000)
	ordersKnown(t, db.Pool, len(limits), len(initial))

	// The load, and the faults on a timeline beside it.
	var placed sync.Map // order id -> struct{}
	var nPlaced, nUnknown, nCancels atomic.Int64
	var cancels sync.WaitGroup
	start := time.Now()
	load := make(chan int)
	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 7))
			for i := range load {
				customer, lines := faultOrder(rng, i, rich, poor, normal)
				var o struct{ ID string }
				status, err := api.call("POST", "/orders", map[string]any{"customer_id": customer, "lines": lines}, &o)
				switch {
				case status == 201:
					placed.Store(o.ID, struct{}{})
					nPlaced.Add(1)
				case status == 0:
					nUnknown.Add(1) // the process died under it: the database says
				default:
					t.Errorf("order %d: %v", i, err)
				}
				if status == 201 && i%20 == 0 {
					nCancels.Add(1)
					wait := time.Duration(rng.IntN(3000)) * time.Millisecond
					cancels.Go(func() {
						time.Sleep(wait)
						_, _ = api.call("POST", "/orders/"+o.ID+"/cancel", nil, nil) // 202, or 409 once final
					})
				}
			}
		})
	}
	var restocked atomic.Int64
	var faults sync.WaitGroup
	faults.Go(func() {
		at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }
		at(8 * time.Second)
		restart("fault 1")
		at(18 * time.Second)
		nt.Stop()
		t.Logf("fault 2: NATS is down (%s)", time.Since(start).Round(time.Second))
		at(48 * time.Second)
		nt.Restart(t)
		t.Logf("fault 2: NATS is back (%s)", time.Since(start).Round(time.Second))
		at(55 * time.Second)
		gw.SetDown(true)
		t.Logf("fault 3: the payment gateway is down (%s)", time.Since(start).Round(time.Second))
		at(55*time.Second + 2*faultStepTimeout + 2*time.Second)
		gw.SetDown(false)
		t.Logf("fault 3: the payment gateway is back (%s)", time.Since(start).Round(time.Second))
		at(75 * time.Second)
		restart("fault 4")
	})
	faults.Go(func() { // restocks, whose events are the record
		for time.Since(start) < faultLoadFor {
			time.Sleep(10 * time.Second)
			sku := normal[rand.IntN(len(normal))]
			if status, _ := api.call("POST", "/inventory/items/"+sku+"/restock", map[string]any{"quantity": 25}, nil); status == 200 {
				restocked.Add(25)
			}
		}
	})
	for i := range faultOrders {
		time.Sleep(time.Until(start.Add(faultLoadFor * time.Duration(i) / faultOrders)))
		load <- i
	}
	close(load)
	workers.Wait()
	cancels.Wait()
	faults.Wait()
	t.Logf("load done in %s: %d orders placed (201), %d requests with an unknown outcome, %d cancels asked",
		time.Since(start).Round(time.Second), nPlaced.Load(), nUnknown.Load(), nCancels.Load())
	took := ordersSettled(t, db.Pool, nt.JS, 5*time.Minute, 5*time.Second)
	t.Logf("settled %s after the load", took.Round(time.Second))

	faultCheck(t, db, nt, gw, limits, initial, &placed)
}

// faultOrder designs order i: a poor customer (refused for credit), an
// empty SKU (out of stock), the lux SKU (declined), or an ordinary order.
func faultOrder(rng *rand.Rand, i int, rich, poor, normal []string) (string, []ordersLine) {
	customer := rich[rng.IntN(len(rich))]
	line := func() ordersLine { return ordersLine{normal[rng.IntN(len(normal))], int64(1 + rng.IntN(3))} }
	lines := []ordersLine{line()}
	if rng.IntN(2) == 0 {
		if l := line(); l.SKU != lines[0].SKU {
			lines = append(lines, l)
		}
	}
	switch n := i % 20; {
	case n < 4: // 20 %
		customer = poor[rng.IntN(len(poor))]
	case n < 6: // 10 %
		lines = append(lines[:1], ordersLine{[]string{"empty-1", "empty-2"}[rng.IntN(2)], 1})
	case n == 6: // 5 %
		lines = []ordersLine{{"lux", 1}}
	}
	return customer, lines
}

// faultCheck checks and prints the sums.
func faultCheck(t *testing.T, db *testenv.DB, nt *testenv.NATS, gw *paymentstest.Gateway, limits, initial map[string]int64, placed *sync.Map) {
	ctx := context.Background()
	type order struct {
		id, customer, status, reason string
		total                        int64
		lines                        []ordersLine
	}
	rows, err := db.Pool.Query(ctx, `SELECT id::text, customer_id::text, status, reason, total, lines FROM orders.orders`)
	if err != nil {
		t.Fatal(err)
	}
	var orders []order
	for rows.Next() {
		var o order
		var raw []byte
		if err := rows.Scan(&o.id, &o.customer, &o.status, &o.reason, &o.total, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &o.lines); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, o)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	outcomes := map[string]int{}
	approvedCredit := map[string]int64{}
	approvedUnits := map[string]int64{}
	final := map[string]string{}
	for _, o := range orders {
		final[o.id] = o.status
		outcomes[strings.TrimSuffix(o.status+" "+o.reason, " ")]++
		if o.status == "pending" {
			t.Errorf("order %s is still pending", o.id)
		}
		if o.status == "approved" {
			approvedCredit[o.customer] += o.total
			for _, l := range o.lines {
				approvedUnits[l.SKU] += l.Quantity
			}
		}
	}
	placed.Range(func(k, _ any) bool {
		if _, ok := final[k.(string)]; !ok {
			t.Errorf("order %s was answered 201 and is not in the database", k)
		}
		return true
	})

	// Credit: per customer, reserved = the sum of its approved orders,
	// available = limit - that; reservations held only by approved orders.
	var sumReserved, sumApproved int64
	crows, err := db.Pool.Query(ctx, `SELECT id::text, credit_limit, reserved FROM customers.customers`)
	if err != nil {
		t.Fatal(err)
	}
	for crows.Next() {
		var id string
		var limit, reserved int64
		if err := crows.Scan(&id, &limit, &reserved); err != nil {
			t.Fatal(err)
		}
		sumReserved += reserved
		sumApproved += approvedCredit[id]
		if reserved != approvedCredit[id] || limit != limits[id] {
			t.Errorf("customer %s: reserved %d, approved orders total %d (limit %d, want %d)", id, reserved, approvedCredit[id], limit, limits[id])
		}
	}
	if crows.Err() != nil {
		t.Fatal(crows.Err())
	}
	var heldCredit, heldStock int
	if err := db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM customers.reservations r JOIN orders.orders o ON o.id = r.order_id WHERE (r.status = 'reserved') <> (o.status = 'approved')),
		(SELECT count(*) FROM inventory.reservations r JOIN orders.orders o ON o.id = r.id WHERE (r.status IN ('reserved', 'committed')) <> (o.status = 'approved'))`).Scan(&heldCredit, &heldStock); err != nil {
		t.Fatal(err)
	}
	if heldCredit+heldStock != 0 {
		t.Errorf("%d credit and %d stock reservations disagree with their order's status", heldCredit, heldStock)
	}

	// Stock: per SKU, initial + restocks (their events) = on hand + the
	// units of approved orders; nothing is left reserved.
	restocks := map[string]int64{}
	for _, m := range streamMessages(t, nt, outbox.PublicStream) {
		if m.Type == "inventory.restocked.v1" {
			var r struct {
				SKU      string `json:"sku"`
				Quantity int64  `json:"quantity"`
			}
			_ = json.Unmarshal(m.Data, &r)
			restocks[r.SKU] += r.Quantity
		}
	}
	var sumIn, sumOnHand, sumUnits, sumRestocks int64
	srows, err := db.Pool.Query(ctx, `SELECT sku, on_hand, reserved FROM inventory.items`)
	if err != nil {
		t.Fatal(err)
	}
	for srows.Next() {
		var sku string
		var onHand, reserved int64
		if err := srows.Scan(&sku, &onHand, &reserved); err != nil {
			t.Fatal(err)
		}
		sumIn += initial[sku] + restocks[sku]
		sumRestocks += restocks[sku]
		sumOnHand += onHand
		sumUnits += approvedUnits[sku]
		if initial[sku]+restocks[sku] != onHand+approvedUnits[sku] || reserved != 0 {
			t.Errorf("%s: initial %d + restocks %d != on hand %d + approved units %d (reserved %d)", sku, initial[sku], restocks[sku], onHand, approvedUnits[sku], reserved)
		}
	}
	if srows.Err() != nil {
		t.Fatal(srows.Err())
	}

	// The gateway: exactly one authorised, unvoided payment per approved
	// order, none for the others, never two authorisations of one key.
	keys := gw.Keys()
	var authorisedUnvoided, voided, authorisations, calls int
	for id, k := range keys {
		authorisations += k.Authorizations
		calls += k.AuthorizeCalls
		voided += k.Voids
		if k.Status == "authorized" {
			authorisedUnvoided++
		}
		if k.Authorizations > 1 {
			t.Errorf("payment %s authorised %d times", id, k.Authorizations)
		}
		if k.Status == "authorized" && final[id] != "approved" {
			t.Errorf("order %s is %s and holds an authorised payment", id, final[id])
		}
	}
	for id, status := range final {
		if k := keys[id]; status == "approved" && (k.Status != "authorized" || k.Authorizations != 1) {
			t.Errorf("approved order %s: gateway %+v", id, k)
		}
	}
	var stuck, deadLetters int
	_ = db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM saga.instances WHERE status <> 'completed'), (SELECT count(*) FROM inbox.dead_letters)`).Scan(&stuck, &deadLetters)
	if stuck != 0 {
		t.Errorf("%d sagas not completed", stuck)
	}

	var names []string
	for k := range outcomes {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %d", k, outcomes[k]))
	}
	fmt.Printf("orders fault run: %d orders: %s\n", len(orders), strings.Join(parts, ", "))
	fmt.Printf("  credit: %d customers; reserved %d = approved totals %d; available = limit - reserved for each\n", len(limits), sumReserved, sumApproved)
	fmt.Printf("  stock: %d SKUs; initial + restocks %d (restocks %d) = on hand %d + approved units %d; reserved 0 for each\n", len(initial), sumIn, sumRestocks, sumOnHand, sumUnits)
	fmt.Printf("  gateway: %d keys, %d authorisation calls, %d authorisations, %d voids; authorised and unvoided %d = approved orders %d\n",
		len(keys), calls, authorisations, voided, authorisedUnvoided, outcomes["approved"])
	fmt.Printf("  held by rejected or cancelled orders: credit %d, stock %d; sagas not completed %d; dead letters %d\n", heldCredit, heldStock, stuck, deadLetters)
	if authorisedUnvoided != outcomes["approved"] {
		t.Errorf("%d authorised unvoided payments for %d approved orders", authorisedUnvoided, outcomes["approved"])
	}
}

// streamMessages reads a whole stream.
func streamMessages(t *testing.T, nt *testenv.NATS, name string) []outbox.CloudEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := nt.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []outbox.CloudEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var ce outbox.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatal(err)
		}
		out = append(out, ce)
	}
	return out
}
