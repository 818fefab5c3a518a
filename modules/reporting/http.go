package reporting

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/web"
)

// DefaultLimit and MaxLimit bound a page of order lines.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

var skuSyntax = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func (m *Module) routes(api *echo.Group) {
	notReady := []int{http.StatusBadRequest, http.StatusServiceUnavailable}
	days := []web.Param{
		{Name: "from", Format: "date", Description: "first day (YYYY-MM-DD, UTC), included"},
		{Name: "to", Format: "date", Description: "last day (YYYY-MM-DD, UTC), included"},
	}
	web.Handle(api, http.MethodGet, "/reports/orders", web.Op{
		Summary:     "Order lines across orders, customers, inventory and payments, oldest placement first",
		Description: "Built from public events alone. `reflects` says which events the answer reflects; 503 projection_not_ready while the report is built for the first time.",
		Response:    OrderLines{}, Errors: notReady,
		Query: []web.Param{
			{Name: "from", Format: "date-time", Description: "placed at or after (RFC 3339)"},
			{Name: "to", Format: "date-time", Description: "placed before (RFC 3339)"},
			{Name: "status", Description: "pending, approved, rejected or cancelled"},
			{Name: "customer_id", Format: "uuid"},
			{Name: "sku"},
			{Name: "limit", Type: "integer", Description: "1 to 1000, default 100"},
			{Name: "after", Description: "next_after of the previous page"},
		},
	}, m.handleOrderLines)
	web.Handle(api, http.MethodGet, "/reports/sales/daily", web.Op{
		Summary:  "Orders placed, approved, rejected (by reason) and cancelled, and the amount approved, per day and currency",
		Response: DailySales{}, Errors: notReady,
		Query: append(days, web.Param{Name: "currency", Description: "ISO 4217, e.g. EUR"}),
	}, m.handleDailySales)
	web.Handle(api, http.MethodGet, "/reports/stock", web.Op{
		Summary:  "Per SKU: on hand, reserved, available, units sold, last change",
		Response: Stock{}, Errors: notReady,
	}, m.handleStock)
	web.Handle(api, http.MethodGet, "/reports/accounts/daily", web.Op{
		Summary:  "Accounts opened, deposits and withdrawals and their sums, per day and currency",
		Response: DailyAccounts{}, Errors: notReady, Query: days,
	}, m.handleDailyAccounts)
}

// params reads a query string, naming every bad parameter at once.
type params struct {
	q   url.Values
	bad map[string]string
}

func newParams(c echo.Context, known ...string) *params {
	p := &params{q: c.QueryParams(), bad: map[string]string{}}
	allowed := map[string]bool{}
	for _, k := range known {
		allowed[k] = true
	}
	for k, vs := range p.q {
		switch {
		case !allowed[k]:
			p.bad[k] = "is not a known parameter"
		case len(vs) > 1:
			p.bad[k] = "must be given once"
		}
	}
	return p
}

func (p *params) get(name string) (string, bool) {
	vs, ok := p.q[name]
	if !ok || p.bad[name] != "" {
		return "", false
	}
	return vs[0], true
}

func (p *params) instant(name string) time.Time {
	v, ok := p.get(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.bad[name] = "must be a time in RFC 3339, e.g. 2026-12-01T00:00:00Z"
	}
	return t
}

func (p *params) date(name string) time.Time {
	v, ok := p.get(name)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		p.bad[name] = "must be a day, YYYY-MM-DD"
	}
	return t
}

func (p *params) err() error {
	if len(p.bad) > 0 {
		return errs.Validation(p.bad)
	}
	return nil
}

func (m *Module) handleOrderLines(c echo.Context) error {
	p := newParams(c, "from", "to", "status", "customer_id", "sku", "limit", "after")
	f := OrderFilter{From: p.instant("from"), To: p.instant("to"), Limit: DefaultLimit}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		p.bad["to"] = "must be after from"
	}
	if v, ok := p.get("status"); ok {
		switch v {
		case "pending", "approved", "rejected", "cancelled":
			f.Status = v
		default:
			p.bad["status"] = "must be pending, approved, rejected or cancelled"
		}
	}
	if v, ok := p.get("customer_id"); ok {
		if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
			p.bad["customer_id"] = "must be a customer id (a UUID)"
		}
		f.CustomerID = v
	}
	if v, ok := p.get("sku"); ok {
		if !skuSyntax.MatchString(v) {
			p.bad["sku"] = "must be a SKU: 1 to 64 letters, digits, '.', '_' or '-'"
		}
		f.SKU = v
	}
	if v, ok := p.get("limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			p.bad["limit"] = "must be a whole number from 1 to 1000"
		}
		f.Limit = n
	}
	if v, ok := p.get("after"); ok {
		cur, err := ParseCursor(v)
		if err != nil {
			p.bad["after"] = "must be the next_after of a previous page"
		}
		f.After = &cur
	}
	if err := p.err(); err != nil {
		return err
	}
	out, err := m.OrderLines(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// dateRange reads from and to, days both included.
func (p *params) dateRange() DateRange {
	r := DateRange{From: p.date("from"), To: p.date("to")}
	if !r.From.IsZero() && !r.To.IsZero() && r.To.Before(r.From) {
		p.bad["to"] = "must be on or after from"
	}
	return r
}

func (m *Module) handleDailySales(c echo.Context) error {
	p := newParams(c, "from", "to", "currency")
	r := p.dateRange()
	currency, ok := p.get("currency")
	if ok && !modules.ValidCurrency(currency) {
		p.bad["currency"] = "must be an ISO 4217 code such as EUR"
	}
	if err := p.err(); err != nil {
		return err
	}
	out, err := m.DailySales(c.Request().Context(), r, currency)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (m *Module) handleStock(c echo.Context) error {
	if err := newParams(c).err(); err != nil {
		return err
	}
	out, err := m.Stock(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (m *Module) handleDailyAccounts(c echo.Context) error {
	p := newParams(c, "from", "to")
	r := p.dateRange()
	if err := p.err(); err != nil {
		return err
	}
	out, err := m.DailyAccounts(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
