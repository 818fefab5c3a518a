package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox/projection"
)

// Reports is what the reports page reads: the reporting module's queries,
// the very ones GET /api/v1/reports/sales/daily and /reports/stock answer
// with. Errors: projection.ErrNotLive before a report's first version is
// live (the endpoints' 503 projection_not_ready).
type Reports interface {
	DailySales(ctx context.Context, r reporting.DateRange, currency string) (reporting.DailySales, error)
	Stock(ctx context.Context) (reporting.Stock, error)
}

const (
	// reportDays is how many days the sales charts cover, today (UTC)
	// included.
	reportDays = 30
	// stockChartMax caps the SKUs the stock chart draws; the table lists
	// every one.
	stockChartMax = 40
	// reportsRefresh is how often the page fetches its figures again.
	reportsRefresh = 5 * time.Second
)

type reportsPage struct {
	Off          bool // no reporting module in this build
	At           time.Time
	RefreshMS    int64
	Refresh      time.Duration
	Days         int
	From, To     string
	Sales        *salesView
	Stock        *stockView
	SalesPending bool // 503 projection_not_ready
	StockPending bool
}

type salesView struct {
	Days     []reporting.DaySales
	Reflects freshness
	Counts   chart
	Amounts  []chart // one per currency
}

type stockView struct {
	Items    []reporting.StockItem
	Reflects freshness
	Chart    chart
	Drawn    int
}

// freshness is an answer's reflects, with how long ago it last moved.
type freshness struct {
	projection.Reflects
	Ago float64
}

// handleReports draws daily sales and stock as charts; the page's script
// swaps in /console/reports/live every few seconds.
func (con *Console) handleReports(c echo.Context) error {
	p, err := con.reports(c.Request().Context())
	if err != nil {
		return err
	}
	return con.render(c, http.StatusOK, "reports", p)
}

// handleReportsLive answers the charts alone, for the page to swap in
// without a reload.
func (con *Console) handleReportsLive(c echo.Context) error {
	p, err := con.reports(c.Request().Context())
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := con.tmpl["reports"].ExecuteTemplate(&buf, "reports-live", p); err != nil {
		return fmt.Errorf("console: render the reports: %w", err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

func (con *Console) reports(ctx context.Context) (reportsPage, error) {
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(reportDays - 1))
	p := reportsPage{At: now, RefreshMS: reportsRefresh.Milliseconds(), Refresh: reportsRefresh, Days: reportDays, From: from.Format(time.DateOnly), To: today.Format(time.DateOnly)}
	if con.Reports == nil {
		p.Off = true
		return p, nil
	}
	sales, err := con.Reports.DailySales(ctx, reporting.DateRange{From: from, To: today}, "")
	switch {
	case errors.Is(err, projection.ErrNotLive):
		p.SalesPending = true
	case err != nil:
		return p, err
	default:
		p.Sales = salesCharts(sales, from, now)
	}
	stock, err := con.Reports.Stock(ctx)
	switch {
	case errors.Is(err, projection.ErrNotLive):
		p.StockPending = true
	case err != nil:
		return p, err
	default:
		p.Stock = stockChart(stock, now)
	}
	return p, nil
}

func fresh(r projection.Reflects, now time.Time) freshness {
	return freshness{Reflects: r, Ago: now.Sub(r.UpdatedAt).Seconds()}
}

// salesCharts draws every day of the range, those without orders too, so
// the x axis is time: the orders per day (all currencies together) and,
// per currency, the amount approved per day.
func salesCharts(s reporting.DailySales, from, now time.Time) *salesView {
	days := make([]string, reportDays)
	index := map[string]int{}
	for i := range days {
		days[i] = from.AddDate(0, 0, i).Format(time.DateOnly)
		index[days[i]] = i
	}
	counts := make([][]int64, reportDays)
	for i := range counts {
		counts[i] = make([]int64, 4)
	}
	amounts := map[string][][]int64{}
	var totals [4]int64
	for _, d := range s.Days {
		i, ok := index[d.Day]
		if !ok {
			continue
		}
		for j, v := range []int64{d.Placed, d.Approved, d.Rejected, d.Cancelled} {
			counts[i][j] += v
			totals[j] += v
		}
		if amounts[d.Currency] == nil {
			amounts[d.Currency] = make([][]int64, reportDays)
			for k := range amounts[d.Currency] {
				amounts[d.Currency][k] = []int64{0}
			}
		}
		amounts[d.Currency][i][0] += d.ApprovedAmount
	}
	span := days[0] + " to " + days[len(days)-1]
	v := &salesView{Days: s.Days, Reflects: fresh(s.Reflects, now)}
	v.Counts = barChart("chart-orders", "Orders per day", fmt.Sprintf("Orders per day, %s (UTC), all currencies: %s placed, %s approved, %s rejected, %s cancelled in all.",
		span, thousands(totals[0]), thousands(totals[1]), thousands(totals[2]), thousands(totals[3])),
		days, []series{{"placed", "s-placed"}, {"approved", "s-approved"}, {"rejected", "s-rejected"}, {"cancelled", "s-cancelled"}}, counts, false)
	currencies := make([]string, 0, len(amounts))
	for cur := range amounts {
		currencies = append(currencies, cur)
	}
	slices.Sort(currencies)
	for _, cur := range currencies {
		var total, best int64
		bestDay := ""
		for i, a := range amounts[cur] {
			total += a[0]
			if a[0] > best {
				best, bestDay = a[0], days[i]
			}
		}
		desc := fmt.Sprintf("Amount approved per day in %s (minor units), %s: %s in all", cur, span, thousands(total))
		if bestDay != "" {
			desc += fmt.Sprintf(", the most on %s (%s)", bestDay, thousands(best))
		}
		v.Amounts = append(v.Amounts, barChart("chart-amount-"+cur, "Amount approved per day, "+cur+" (minor units)", desc+".",
			days, []series{{"approved " + cur, "s-amount"}}, amounts[cur], false))
	}
	return v
}

// stockChart draws on hand, reserved and available per SKU, the first
// stockChartMax SKUs in SKU order.
func stockChart(s reporting.Stock, now time.Time) *stockView {
	v := &stockView{Items: s.Items, Reflects: fresh(s.Reflects, now), Drawn: min(len(s.Items), stockChartMax)}
	var skus []string
	var values [][]int64
	var onHand, reserved, available int64
	for i, it := range s.Items {
		onHand, reserved, available = onHand+it.OnHand, reserved+it.Reserved, available+it.Available
		if i < stockChartMax {
			skus = append(skus, it.SKU)
			// A negative available (more reserved than on hand) draws as
			// none; the table says the figure.
			values = append(values, []int64{max(it.OnHand, 0), max(it.Reserved, 0), max(it.Available, 0)})
		}
	}
	desc := fmt.Sprintf("Units per SKU of %d SKUs: %s on hand, %s reserved, %s available in all.",
		len(s.Items), thousands(onHand), thousands(reserved), thousands(available))
	if v.Drawn < len(s.Items) {
		desc += fmt.Sprintf(" The chart draws the first %d; the table lists all.", v.Drawn)
	}
	v.Chart = barChart("chart-stock", "Stock per SKU", desc, skus,
		[]series{{"on hand", "s-onhand"}, {"reserved", "s-reserved"}, {"available", "s-available"}}, values, true)
	return v
}

// The reports template's own helpers, kept here beside the page.
func init() {
	funcs["px"] = func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	funcs["thousands"] = thousands
}
