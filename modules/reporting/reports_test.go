package reporting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/projection"
)

// getJSON GETs base+path into out; an error for anything but a 200.
func getJSON(base, path string, out any) error {
	resp, err := http.Get(base + "/api/v1" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// readReports reads every report over HTTP and folds its answers into the
// shape fold gives, with the versions that answered.
func readReports(base string) (folded, map[string]int, error) {
	f := folded{LinesByStatus: map[string]int64{}, Stock: map[string]stockFold{}}
	versions := map[string]int{}
	after := ""
	for {
		var page reporting.OrderLines
		path := "/reports/orders?limit=1000"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		if err := getJSON(base, path, &page); err != nil {
			return f, nil, err
		}
		versions["orders"] = page.Reflects.Version
		for _, l := range page.Lines {
			f.Lines++
			f.LinesQuantity += l.Quantity
			f.LinesTotal += l.Total.Amount
			f.LinesByStatus[l.Status]++
		}
		if page.NextAfter == nil {
			break
		}
		after = *page.NextAfter
	}
	var sales reporting.DailySales
	if err := getJSON(base, "/reports/sales/daily", &sales); err != nil {
		return f, nil, err
	}
	versions["sales"] = sales.Reflects.Version
	for _, d := range sales.Days {
		f.Placed += d.Placed
		f.Approved += d.Approved
		f.Rejected += d.Rejected
		f.Cancelled += d.Cancelled
		f.ApprovedAmount += d.ApprovedAmount
	}
	var accs reporting.DailyAccounts
	if err := getJSON(base, "/reports/accounts/daily", &accs); err != nil {
		return f, nil, err
	}
	versions["accounts"] = accs.Reflects.Version
	for _, d := range accs.Days {
		f.Opened += d.Opened
		f.Deposits += d.Deposits
		f.Deposited += d.Deposited
		f.Withdrawals += d.Withdrawals
		f.Withdrawn += d.Withdrawn
	}
	var stock reporting.Stock
	if err := getJSON(base, "/reports/stock", &stock); err != nil {
		return f, nil, err
	}
	versions["stock"] = stock.Reflects.Version
	for _, it := range stock.Items {
		f.Stock[it.SKU] = stockFold{OnHand: it.OnHand, Reserved: it.Reserved, Available: it.Available, UnitsSold: it.UnitsSold}
	}
	return f, versions, nil
}

// publish appends events to the outbox as the modules would, n to a
// transaction, pausing between transactions; the relay publishes them and
// the lake takes them in.
func publish(ctx context.Context, pool *pgxpool.Pool, events []projection.Event, n int, pause time.Duration) error {
	for i := 0; i < len(events); i += n {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		var batch []outbox.Event
		for _, e := range events[i:min(i+n, len(events))] {
			// Append takes the declared Go type, as a module gives it.
			d, _ := outbox.Lookup(e.Type)
			data := reflect.New(d.Payload)
			if err := json.Unmarshal(e.Data, data.Interface()); err != nil {
				_ = tx.Rollback(ctx)
				return err
			}
			batch = append(batch, outbox.Event{ID: e.ID, Type: e.Type, Key: e.Subject, Data: data.Elem().Interface()})
		}
		if _, err := outbox.Append(ctx, tx, batch...); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// versionState reads a version's state and build progress.
func versionState(t testing.TB, pool *pgxpool.Pool, name string, version int) (state string, pos, target int64) {
	t.Helper()
	err := pool.QueryRow(context.Background(), `SELECT state, lake_position, build_target FROM projection.versions
		WHERE name = $1 AND version = $2`, name, version).Scan(&state, &pos, &target)
	if err != nil {
		return "", 0, 0
	}
	return state, pos, target
}
