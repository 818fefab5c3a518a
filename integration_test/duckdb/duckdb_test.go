package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/testenv"
)

// lakeSum is the checksum both engines compute over the same rows: every
// envelope column that matters and the data, one line per event, in
// position order, hashed with MD5.
const (
	pgSum = `SELECT count(*), coalesce(sum(position), 0), md5(coalesce(string_agg(
	    position::text || '|' || id::text || '|' || type || '|' || subject || '|' || coalesce(stream_seq::text, '') || '|' ||
	    stream || '|' || ((extract(epoch FROM time) * 1000000)::bigint)::text || '|' || data::text, chr(10) ORDER BY position), ''))
	FROM lake.events WHERE position BETWEEN $1 AND $2`
	duckSum = `SELECT count(*), coalesce(sum(position), 0), md5(coalesce(string_agg(
	    position::VARCHAR || '|' || id || '|' || type || '|' || subject || '|' || coalesce(stream_seq::VARCHAR, '') || '|' ||
	    stream || '|' || epoch_us(time)::VARCHAR || '|' || data::VARCHAR, chr(10) ORDER BY position), ''))
	FROM read_parquet([%s]) WHERE position BETWEEN %d AND %d`
)

// Real events (accounts, deposits, withdrawals, sign-ups) go through the
// relay into the lake and out to Parquet, in part files and, once their
// hour is over, in one file per type; DuckDB reads them back and agrees
// with the lake on the count and the checksum, over everything and over a
// position range.
func TestDuckDBReadsTheExport(t *testing.T) {
	a := testenv.StartApp(t, testenv.AppOptions{
		RelayDeleteDelay: 100 * time.Millisecond,
		Config:           func(c *config.Config) { c.LakeExportInterval = 0 },
	})
	ctx := context.Background()
	dir := t.TempDir()
	e, err := export.Open(ctx, a.DB.Pool, export.Options{URL: "file://" + dir, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	load := func(round int) {
		for i := range 10 {
			r := a.API("POST", "/accounts", map[string]any{"owner": fmt.Sprintf("owner %d/%d", round, i), "currency": "EUR"})
			if r.Status != 201 {
				t.Fatalf("open: %d %s", r.Status, r.Raw)
			}
			id := r.Body["id"].(string)
			for j := range 20 {
				a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 100 + j})
			}
			a.API("POST", "/accounts/"+id+"/withdrawals", map[string]any{"amount": 50})
			a.API("POST", "/users", map[string]any{"username": "u", "email": fmt.Sprintf("u%d.%d@example.com", round, i), "password": "correct horse battery"})
		}
		a.Drain()
		for a.Count(`SELECT count(*) FROM outbox.events`) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := e.ExportOnce(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	load(1)
	load(2)
	compare(t, a, e, dir, "part files of the open hour")
	// The hour ends, by the lake's clock: it is written again as one file
	// per type.
	if _, err := a.DB.Pool.Exec(ctx, `UPDATE lake.head SET recorded_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if r, err := e.ExportOnce(ctx, nil); err != nil || r.Compacted != 1 {
		t.Fatalf("compaction: %+v %v", r, err)
	}
	compare(t, a, e, dir, "one file per type of the closed hour")
}

func compare(t *testing.T, a *testenv.App, e *export.Exporter, dir, what string) {
	t.Helper()
	ctx := context.Background()
	m, err := export.ReadManifest(ctx, e.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range m.Periods {
		for _, f := range p.Files {
			files = append(files, "'"+filepath.Join(dir, f.Path)+"'")
		}
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	for _, r := range [][2]int64{{1, m.Through}, {m.Through / 3, 2 * m.Through / 3}} {
		var pn, dn, ps, ds int64
		var ph, dh string
		if err := a.DB.Pool.QueryRow(ctx, pgSum, r[0], r[1]).Scan(&pn, &ps, &ph); err != nil {
			t.Fatal(err)
		}
		q := fmt.Sprintf(duckSum, strings.Join(files, ", "), r[0], r[1])
		if err := duck.QueryRow(q).Scan(&dn, &ds, &dh); err != nil {
			t.Fatalf("duckdb: %v", err)
		}
		t.Logf("%s, positions %d-%d: lake %d rows %s, DuckDB %d rows %s (%d files)", what, r[0], r[1], pn, ph, dn, dh, len(files))
		if pn == 0 || pn != dn || ps != ds || ph != dh {
			t.Fatalf("%s, positions %d-%d: the lake has %d rows (sum %d, md5 %s), DuckDB reads %d (sum %d, md5 %s)", what, r[0], r[1], pn, ps, ph, dn, ds, dh)
		}
	}
}
