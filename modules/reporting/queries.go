package reporting

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox/projection"
)

// MaxDays bounds the rows of a daily report; the answer says truncated
// when there were more.
const MaxDays = 1000

// OrderFilter selects order lines; zero fields select everything.
type OrderFilter struct {
	From, To   time.Time // From <= placed_at < To
	Status     string    // pending, approved, rejected or cancelled
	CustomerID string
	SKU        string
	Limit      int     // at most this many (1 to 1000)
	After      *Cursor // lines after this one (the previous page's last)
}

// Cursor is a place in the order lines' order: placed_at, order, line.
type Cursor struct {
	PlacedAt time.Time
	OrderID  string
	Line     int
}

// String encodes the cursor as a client passes it back in after=.
func (c Cursor) String() string {
	raw := c.PlacedAt.UTC().Format(time.RFC3339Nano) + "|" + c.OrderID + "|" + strconv.Itoa(c.Line)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes an after= value.
func ParseCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, err
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return Cursor{}, errors.New("not a cursor")
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return Cursor{}, err
	}
	line, err := strconv.Atoi(parts[2])
	if err != nil || parts[1] == "" {
		return Cursor{}, errors.New("not a cursor")
	}
	return Cursor{PlacedAt: at, OrderID: parts[1], Line: line}, nil
}

// Money is an amount in minor units of a currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// OrderLine is one line of an order as the report shows it.
type OrderLine struct {
	OrderID  string    `json:"order_id"`
	Line     int       `json:"line"`
	PlacedAt time.Time `json:"placed_at"`
	Customer Customer  `json:"customer"`
	SKU      string    `json:"sku"`
	// ItemName is null until the item's catalogue event arrived.
	ItemName  *string `json:"item_name"`
	Quantity  int64   `json:"quantity"`
	UnitPrice Money   `json:"unit_price"`
	Total     Money   `json:"total"`
	// Status: pending, approved, rejected or cancelled; Reason when
	// rejected or cancelled.
	Status string  `json:"status"`
	Reason *string `json:"reason"`
	// Credit: none, reserved, refused, released. Stock: none, reserved,
	// unavailable, committed, released. Payment: none, authorized,
	// declined, voided.
	Credit  string `json:"credit"`
	Stock   string `json:"stock"`
	Payment string `json:"payment"`
	// StockReserved and PaymentAuthorized: whether they ever were.
	StockReserved     bool `json:"stock_reserved"`
	PaymentAuthorized bool `json:"payment_authorized"`
}

// Customer is who placed an order. Name is always null: a customer's name
// is personal data (sealed per person in the lake, erased when the person
// is forgotten), and reports keep none; look the name up in the customers
// module while it exists.
type Customer struct {
	ID   string  `json:"id"`
	Name *string `json:"name"`
}

// OrderLines is a page of order lines.
type OrderLines struct {
	Lines []OrderLine `json:"lines"`
	// NextAfter is the after= of the next page; null on the last.
	NextAfter *string             `json:"next_after"`
	Reflects  projection.Reflects `json:"reflects"`
}

// OrderLines returns the lines f selects, oldest placement first.
// Errors: projection.ErrNotLive before the first build, or the database's.
func (m *Module) OrderLines(ctx context.Context, f OrderFilter) (OrderLines, error) {
	out := OrderLines{Lines: []OrderLine{}}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if !f.From.IsZero() {
		where = append(where, "l.placed_at >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "l.placed_at < "+arg(f.To))
	}
	if f.Status != "" {
		where = append(where, "l.status = "+arg(f.Status))
	}
	if f.CustomerID != "" {
		where = append(where, "l.customer_id = "+arg(f.CustomerID))
	}
	if f.SKU != "" {
		where = append(where, "l.sku = "+arg(f.SKU))
	}
	if f.After != nil {
		where = append(where, "(l.placed_at, l.order_id, l.line) > ("+arg(f.After.PlacedAt)+"::timestamptz, "+arg(f.After.OrderID)+"::text, "+arg(f.After.Line)+"::int)")
	}
	q := `SELECT l.order_id, l.line, l.placed_at, l.customer_id, nullif(c.name, ''), l.sku, i.name, l.quantity, l.unit_price, l.currency,
       l.total, l.status, l.reason, l.credit, l.stock, l.payment, l.stock_reserved, l.payment_authorized
FROM {order_lines} l LEFT JOIN {order_customers} c ON c.customer_id = l.customer_id
     LEFT JOIN {order_items} i ON i.sku = l.sku`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	q += "\nORDER BY l.placed_at, l.order_id, l.line LIMIT " + strconv.Itoa(f.Limit)
	err := m.orderLines.Read(ctx, m.pool, func(ctx context.Context, tx pgx.Tx, v projection.View) error {
		out.Reflects = v.Reflects
		rows, err := tx.Query(ctx, v.SQL(q), args...)
		if err != nil {
			return err
		}
		out.Lines, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderLine, error) {
			var l OrderLine
			err := r.Scan(&l.OrderID, &l.Line, &l.PlacedAt, &l.Customer.ID, &l.Customer.Name, &l.SKU, &l.ItemName, &l.Quantity,
				&l.UnitPrice.Amount, &l.UnitPrice.Currency, &l.Total.Amount, &l.Status, &l.Reason, &l.Credit, &l.Stock, &l.Payment,
				&l.StockReserved, &l.PaymentAuthorized)
			l.Total.Currency, l.PlacedAt = l.UnitPrice.Currency, l.PlacedAt.UTC()
			return l, err
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("reporting: order lines: %w", err)
	}
	if out.Lines == nil {
		out.Lines = []OrderLine{}
	}
	if n := len(out.Lines); n == f.Limit && n > 0 {
		last := out.Lines[n-1]
		next := Cursor{PlacedAt: last.PlacedAt, OrderID: last.OrderID, Line: last.Line}.String()
		out.NextAfter = &next
	}
	return out, nil
}

// DaySales is one day's sales in one currency.
type DaySales struct {
	Day      string `json:"day"`
	Currency string `json:"currency"`
	Placed   int64  `json:"placed"`
	Approved int64  `json:"approved"`
	Rejected int64  `json:"rejected"`
	// RejectedByReason counts the rejections by their reason.
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Cancelled        int64            `json:"cancelled"`
	// ApprovedAmount is the total of the orders approved that day, in
	// minor units of Currency.
	ApprovedAmount int64 `json:"approved_amount"`
}

// DailySales is the sales report.
type DailySales struct {
	Days      []DaySales          `json:"days"`
	Truncated bool                `json:"truncated"`
	Reflects  projection.Reflects `json:"reflects"`
}

// DateRange selects days, both ends included; zero ends are open.
type DateRange struct{ From, To time.Time }

func (r DateRange) where(col string, args *[]any) []string {
	var out []string
	if !r.From.IsZero() {
		*args = append(*args, r.From)
		out = append(out, col+" >= $"+strconv.Itoa(len(*args))+"::date")
	}
	if !r.To.IsZero() {
		*args = append(*args, r.To)
		out = append(out, col+" <= $"+strconv.Itoa(len(*args))+"::date")
	}
	return out
}

// DailySales returns the sales of the days in r, in currency if given,
// oldest first. Errors: as OrderLines.
func (m *Module) DailySales(ctx context.Context, r DateRange, currency string) (DailySales, error) {
	out := DailySales{Days: []DaySales{}}
	var args []any
	where := r.where("s.day", &args)
	if currency != "" {
		args = append(args, currency)
		where = append(where, "s.currency = $"+strconv.Itoa(len(args)))
	}
	q := `SELECT s.day, s.currency, s.placed, s.approved, s.rejected, s.cancelled, s.approved_amount,
       (SELECT coalesce(jsonb_object_agg(r.reason, r.orders), '{}') FROM {daily_rejections} r
        WHERE r.day = s.day AND r.currency = s.currency)
FROM {daily_sales} s`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	q += "\nORDER BY s.day, s.currency LIMIT " + strconv.Itoa(MaxDays+1)
	err := m.sales.Read(ctx, m.pool, func(ctx context.Context, tx pgx.Tx, v projection.View) error {
		out.Reflects = v.Reflects
		rows, err := tx.Query(ctx, v.SQL(q), args...)
		if err != nil {
			return err
		}
		out.Days, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DaySales, error) {
			var d DaySales
			var day time.Time
			err := r.Scan(&day, &d.Currency, &d.Placed, &d.Approved, &d.Rejected, &d.Cancelled, &d.ApprovedAmount, &d.RejectedByReason)
			d.Day = day.Format(time.DateOnly)
			return d, err
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("reporting: daily sales: %w", err)
	}
	if out.Days == nil {
		out.Days = []DaySales{}
	}
	if len(out.Days) > MaxDays {
		out.Days, out.Truncated = out.Days[:MaxDays], true
	}
	return out, nil
}

// StockItem is one SKU's stock.
type StockItem struct {
	SKU string `json:"sku"`
	// Name and UnitPrice are null until the item's catalogue events arrived.
	Name      *string `json:"name"`
	OnHand    int64   `json:"on_hand"`
	Reserved  int64   `json:"reserved"`
	Available int64   `json:"available"`
	UnitsSold int64   `json:"units_sold"`
	UnitPrice *Money  `json:"unit_price"`
	// LastChange is the time of the newest event that changed its stock.
	LastChange *time.Time `json:"last_change"`
}

// Stock is the stock report.
type Stock struct {
	Items    []StockItem         `json:"items"`
	Reflects projection.Reflects `json:"reflects"`
}

// Stock returns every SKU's stock, by SKU. Errors: as OrderLines.
func (m *Module) Stock(ctx context.Context) (Stock, error) {
	out := Stock{Items: []StockItem{}}
	err := m.stock.Read(ctx, m.pool, func(ctx context.Context, tx pgx.Tx, v projection.View) error {
		out.Reflects = v.Reflects
		rows, err := tx.Query(ctx, v.SQL(`SELECT sku, name, initial + restocked - committed, reserved, committed,
       unit_price, currency, last_change FROM {stock} ORDER BY sku`))
		if err != nil {
			return err
		}
		out.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StockItem, error) {
			var it StockItem
			var price *int64
			var currency *string
			err := r.Scan(&it.SKU, &it.Name, &it.OnHand, &it.Reserved, &it.UnitsSold, &price, &currency, &it.LastChange)
			it.Available = it.OnHand - it.Reserved
			if price != nil && currency != nil {
				it.UnitPrice = &Money{Amount: *price, Currency: *currency}
			}
			if it.LastChange != nil {
				t := it.LastChange.UTC()
				it.LastChange = &t
			}
			return it, err
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("reporting: stock: %w", err)
	}
	if out.Items == nil {
		out.Items = []StockItem{}
	}
	return out, nil
}

// DayAccounts is one day's ledger activity in one currency.
type DayAccounts struct {
	Day         string `json:"day"`
	Currency    string `json:"currency"`
	Opened      int64  `json:"opened"`
	Deposits    int64  `json:"deposits"`
	Deposited   int64  `json:"deposited"`
	Withdrawals int64  `json:"withdrawals"`
	Withdrawn   int64  `json:"withdrawn"`
}

// DailyAccounts is the accounts report.
type DailyAccounts struct {
	Days      []DayAccounts       `json:"days"`
	Truncated bool                `json:"truncated"`
	Reflects  projection.Reflects `json:"reflects"`
}

// DailyAccounts returns the ledger's activity of the days in r, oldest
// first. Errors: as OrderLines.
func (m *Module) DailyAccounts(ctx context.Context, r DateRange) (DailyAccounts, error) {
	out := DailyAccounts{Days: []DayAccounts{}}
	var args []any
	where := r.where("day", &args)
	q := `SELECT day, currency, opened, deposits, deposited, withdrawals, withdrawn FROM {daily_accounts}`
	if len(where) > 0 {
		q += "\nWHERE " + strings.Join(where, " AND ")
	}
	q += "\nORDER BY day, currency LIMIT " + strconv.Itoa(MaxDays+1)
	err := m.accs.Read(ctx, m.pool, func(ctx context.Context, tx pgx.Tx, v projection.View) error {
		out.Reflects = v.Reflects
		rows, err := tx.Query(ctx, v.SQL(q), args...)
		if err != nil {
			return err
		}
		out.Days, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DayAccounts, error) {
			var d DayAccounts
			var day time.Time
			err := r.Scan(&day, &d.Currency, &d.Opened, &d.Deposits, &d.Deposited, &d.Withdrawals, &d.Withdrawn)
			d.Day = day.Format(time.DateOnly)
			return d, err
		})
		return err
	})
	if err != nil {
		return out, fmt.Errorf("reporting: daily accounts: %w", err)
	}
	if out.Days == nil {
		out.Days = []DayAccounts{}
	}
	if len(out.Days) > MaxDays {
		out.Days, out.Truncated = out.Days[:MaxDays], true
	}
	return out, nil
}
