package reporting_test

import (
	"encoding/json"

	"github.com/cairn-dev/cairn/outbox/projection"
)

// folded is what the reports must say about a set of events, computed
// here in Go, one event at a time, independently of the projections' SQL:
// the totals over every day, and every SKU's stock.
type folded struct {
	Lines, LinesQuantity, LinesTotal int64
	LinesByStatus                    map[string]int64
	Placed, Approved, Rejected       int64
	Cancelled, ApprovedAmount        int64
	Opened, Deposits, Deposited      int64
	Withdrawals, Withdrawn           int64
	Stock                            map[string]stockFold
}

type stockFold struct{ OnHand, Reserved, Available, UnitsSold int64 }

type evData struct {
	OrderID       string          `json:"order_id"`
	ReservationID string          `json:"reservation_id"`
	PaymentID     string          `json:"payment_id"`
	AccountID     string          `json:"account_id"`
	Version       *int64          `json:"version"`
	Amount        json.RawMessage `json:"amount"` // a number (ledger) or money
	SKU           string          `json:"sku"`
	OnHand        int64           `json:"on_hand"`
	Quantity      int64           `json:"quantity"`
	Total         struct {
		Amount int64 `json:"amount"`
	} `json:"total"`
	Lines []struct {
		SKU       string `json:"sku"`
		Quantity  int64  `json:"quantity"`
		UnitPrice struct {
			Amount int64 `json:"amount"`
		} `json:"unit_price"`
	} `json:"lines"`
}

// fold folds events (each at most once by id: a fold of the history, not
// of deliveries).
func fold(events []projection.Event) folded {
	f := folded{LinesByStatus: map[string]int64{}, Stock: map[string]stockFold{}}
	seen := map[string]bool{}
	orders := map[string]map[string]bool{}
	placed := map[string]evData{}
	type res struct {
		r, c, rel bool
		lines     []evData
	}
	reservations := map[string]*res{}
	initial, restocked := map[string]int64{}, map[string]int64{}
	moves := map[[2]any]bool{}
	for _, e := range events {
		if seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		var d evData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			panic(err)
		}
		order := d.OrderID
		if order == "" {
			order = d.ReservationID
		}
		if order == "" {
			order = d.PaymentID
		}
		if order != "" {
			if orders[order] == nil {
				orders[order] = map[string]bool{}
			}
			orders[order][e.Type] = true
		}
		switch e.Type {
		case "orders.order_placed.v1":
			if _, ok := placed[order]; !ok {
				placed[order] = d
			}
		case "orders.order_approved.v1":
			f.ApprovedAmount += d.Total.Amount
		case "inventory.item_added.v1":
			if _, ok := initial[d.SKU]; !ok {
				initial[d.SKU] = d.OnHand
			}
		case "inventory.restocked.v1":
			restocked[d.SKU] += d.Quantity
		case "inventory.stock_reserved.v1", "inventory.stock_committed.v1", "inventory.stock_released.v1":
			r := reservations[d.ReservationID]
			if r == nil {
				r = &res{}
				reservations[d.ReservationID] = r
			}
			switch e.Type {
			case "inventory.stock_reserved.v1":
				r.r = true
				r.lines = []evData{d}
			case "inventory.stock_committed.v1":
				r.c = true
			default:
				r.rel = true
			}
		case "ledger.account_opened.v1", "ledger.deposited.v1", "ledger.withdrawn.v1":
			k := [2]any{d.AccountID, *d.Version}
			if moves[k] {
				continue
			}
			moves[k] = true
			var amount int64
			_ = json.Unmarshal(d.Amount, &amount)
			switch e.Type {
			case "ledger.account_opened.v1":
				f.Opened++
			case "ledger.deposited.v1":
				f.Deposits++
				f.Deposited += amount
			default:
				f.Withdrawals++
				f.Withdrawn += amount
			}
		}
	}
	for id, p := range placed {
		seen := orders[id]
		status := "pending"
		switch {
		case seen["orders.order_cancelled.v1"]:
			status = "cancelled"
		case seen["orders.order_rejected.v1"]:
			status = "rejected"
		case seen["orders.order_approved.v1"]:
			status = "approved"
		}
		for _, l := range p.Lines {
			f.Lines++
			f.LinesQuantity += l.Quantity
			f.LinesTotal += l.Quantity * l.UnitPrice.Amount
			f.LinesByStatus[status]++
		}
	}
	for _, kinds := range orders {
		for typ, n := range map[string]*int64{"orders.order_placed.v1": &f.Placed, "orders.order_approved.v1": &f.Approved,
			"orders.order_rejected.v1": &f.Rejected, "orders.order_cancelled.v1": &f.Cancelled} {
			if kinds[typ] {
				*n++
			}
		}
	}
	sold, reserved := map[string]int64{}, map[string]int64{}
	for _, r := range reservations {
		for _, d := range r.lines {
			for _, l := range d.Lines {
				if r.r && !r.c && !r.rel {
					reserved[l.SKU] += l.Quantity
				}
				if r.c && !r.rel {
					sold[l.SKU] += l.Quantity
				}
			}
		}
	}
	for sku, n := range initial {
		on := n + restocked[sku] - sold[sku]
		f.Stock[sku] = stockFold{OnHand: on, Reserved: reserved[sku], Available: on - reserved[sku], UnitsSold: sold[sku]}
	}
	return f
}
