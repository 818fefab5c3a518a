package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/testenv"
)

var (
	salesRow = regexp.MustCompile(`<tr data-day="([^"]+)" data-currency="([^"]+)" data-placed="(\d+)" data-approved="(\d+)" data-rejected="(\d+)" data-cancelled="(\d+)" data-amount="(\d+)">`)
	stockRow = regexp.MustCompile(`<tr data-sku="([^"]+)" data-units-on-hand="(-?\d+)" data-reserved="(-?\d+)" data-available="(-?\d+)" data-sold="(-?\d+)">`)
	reflects = regexp.MustCompile(`data-projection="([^"]+)" data-lake-position="(\d+)" data-stream-seq="(\d+)"`)
)

// pageFigures reads the figures the reports page shows, in its tables and
// freshness lines: one string per row, and each projection's stream
// sequence.
func pageFigures(page string) (sales, stock []string, seqs map[string]string) {
	for _, m := range salesRow.FindAllStringSubmatch(page, -1) {
		sales = append(sales, strings.Join(m[1:], " "))
	}
	for _, m := range stockRow.FindAllStringSubmatch(page, -1) {
		stock = append(stock, strings.Join(m[1:], " "))
	}
	seqs = map[string]string{}
	for _, m := range reflects.FindAllStringSubmatch(page, -1) {
		seqs[m[1]] = m[3]
	}
	return sales, stock, seqs
}

// endpointFigures reads the same figures from the report endpoints.
func endpointFigures(t *testing.T, a *testenv.App, from, to string) (sales, stock []string, seqs map[string]string) {
	t.Helper()
	var s reporting.DailySales
	var st reporting.Stock
	for path, out := range map[string]any{"/reports/sales/daily?from=" + from + "&to=" + to: &s, "/reports/stock": &st} {
		r := a.API("GET", path, nil)
		if r.Status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Raw)
		}
		if err := json.Unmarshal([]byte(r.Raw), out); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range s.Days {
		sales = append(sales, fmt.Sprintf("%s %s %d %d %d %d %d", d.Day, d.Currency, d.Placed, d.Approved, d.Rejected, d.Cancelled, d.ApprovedAmount))
	}
	for _, it := range st.Items {
		stock = append(stock, fmt.Sprintf("%s %d %d %d %d", it.SKU, it.OnHand, it.Reserved, it.Available, it.UnitsSold))
	}
	seqs = map[string]string{s.Reflects.Projection: fmt.Sprint(s.Reflects.StreamSeq), st.Reflects.Projection: fmt.Sprint(st.Reflects.StreamSeq)}
	return sales, stock, seqs
}

// The reports page draws daily sales and stock from the reporting
// module's projections: after orders are placed (approved and rejected),
// its tables and freshness lines say exactly what GET /api/v1/reports/
// sales/daily and /reports/stock answer, its charts are drawn, the live
// fragment the page swaps in every few seconds says the same behind the
// login, and a report that is not live yet is said to be building while
// the other still shows.
func TestReportsPageShowsWhatTheEndpointsAnswer(t *testing.T) {
	// Published rows go to the lake at once: a projection is verified
	// against the lake before it goes live.
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond,
		Config: func(c *config.Config) { c.AdminToken = token }})
	eur := func(n int) map[string]any { return map[string]any{"amount": n, "currency": "EUR"} }
	must := func(r testenv.Response) testenv.Response {
		t.Helper()
		if r.Status != 201 && r.Status != 202 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		return r
	}
	c := must(a.API("POST", "/customers", map[string]any{"name": "Ada", "credit_limit": eur(100_000)})).Body["id"].(string)
	must(a.API("POST", "/inventory/items", map[string]any{"sku": "apple", "name": "Apple", "unit_price": eur(150), "on_hand": 10}))
	must(a.API("POST", "/inventory/items", map[string]any{"sku": "pear", "name": "Pear", "unit_price": eur(90), "on_hand": 5}))
	a.Drain()
	for _, l := range []struct {
		sku string
		qty int
	}{{"apple", 3}, {"pear", 2}, {"apple", 50}} {
		must(a.API("POST", "/orders", map[string]any{"customer_id": c, "lines": []map[string]any{{"sku": l.sku, "quantity": l.qty}}}))
	}
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("the reports last answered:\n%s", last)
		}
	}()
	waitFor(t, "the reports to show the three orders", func() bool {
		var s reporting.DailySales
		var st reporting.Stock
		rs, rst := a.API("GET", "/reports/sales/daily", nil), a.API("GET", "/reports/stock", nil)
		last = fmt.Sprintf("%d %s\n%d %s", rs.Status, rs.Raw, rst.Status, rst.Raw)
		if rs.Status != 200 || json.Unmarshal([]byte(rs.Raw), &s) != nil || len(s.Days) != 1 {
			return false
		}
		if rst.Status != 200 || json.Unmarshal([]byte(rst.Raw), &st) != nil || len(st.Items) != 2 {
			return false
		}
		d := s.Days[0]
		return d.Placed == 3 && d.Approved == 2 && d.Rejected == 1 && d.ApprovedAmount == 3*150+2*90 &&
			st.Items[0].UnitsSold == 3 && st.Items[0].Reserved == 0 && st.Items[1].UnitsSold == 2 && st.Items[1].Reserved == 0
	})

	b := newBrowser(t, a.URL)
	if status, _, h := b.do("GET", "/console/reports/live", nil); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login") {
		t.Fatalf("the live fragment without a session: %d to %q", status, h.Get("Location"))
	}
	b.login()
	today := time.Now().UTC().Format(time.DateOnly)
	from := time.Now().UTC().AddDate(0, 0, -29).Format(time.DateOnly)
	for _, path := range []string{"/console/reports", "/console/reports/live"} {
		var page string
		var diff string
		// The page and the endpoints are read one after the other: a
		// late event (a customer's credit, say) may move a projection in
		// between, so read both again until they agree.
		ok := false
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ok; time.Sleep(100 * time.Millisecond) {
			page = b.page(path)
			ps, pst, pseq := pageFigures(page)
			es, est, eseq := endpointFigures(t, a, from, today)
			ok = slices.Equal(ps, es) && slices.Equal(pst, est) && maps.Equal(pseq, eseq) && len(ps) == 1 && len(pst) == 2 && len(pseq) == 2
			diff = fmt.Sprintf("page: %q %q %v\nendpoints: %q %q %v", ps, pst, pseq, es, est, eseq)
		}
		if !ok {
			t.Fatalf("%s does not say what the endpoints say:\n%s\n%s", path, diff, page)
		}
		t.Logf("%s: %s", path, diff)
		for _, want := range []string{`id="chart-orders"`, `id="chart-amount-EUR"`, `id="chart-stock"`,
			`<title>apple, on hand: 7</title>`, `<title>pear, available: 3</title>`, `<title>` + today + `, rejected: 1</title>`,
			`<title>` + today + `, approved EUR: 630</title>`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
		if isLive := !strings.Contains(page, "<html"); isLive != (path == "/console/reports/live") {
			t.Errorf("%s: a whole page %v", path, !isLive)
		}
	}

	// A report whose projection is not live yet answers 503
	// projection_not_ready; the page says it is building and still draws
	// the other. (The pointer is put back at once.)
	ctx := context.Background()
	var live int
	if err := a.DB.Pool.QueryRow(ctx, `UPDATE projection.projections p SET live_version = NULL FROM projection.projections o
		WHERE p.name = o.name AND p.name = 'reporting_daily_sales' RETURNING o.live_version`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	r := a.API("GET", "/reports/sales/daily", nil)
	page := b.page("/console/reports")
	if _, err := a.DB.Pool.Exec(ctx, `UPDATE projection.projections SET live_version = $1 WHERE name = 'reporting_daily_sales'`, live); err != nil {
		t.Fatal(err)
	}
	if r.Status != 503 || r.ErrorCode() != "projection_not_ready" {
		t.Fatalf("daily sales with no live version: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(page, `id="sales-pending"`) || strings.Contains(page, `id="chart-orders"`) || !strings.Contains(page, `id="chart-stock"`) {
		t.Fatalf("the page while daily sales are not live:\n%s", page)
	}
	if ps, _, _ := pageFigures(b.page("/console/reports")); len(ps) != 1 {
		t.Fatalf("daily sales after the pointer came back: %q", ps)
	}
}
