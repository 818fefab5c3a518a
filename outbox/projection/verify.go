package projection

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Report is the result of one verification, kept on the version
// (last_verification) and shown by GET /api/v1/admin/projections.
type Report struct {
	At time.Time `json:"at"`
	OK bool      `json:"ok"`
	// Skipped says why nothing was compared (the lake is off).
	Skipped string `json:"skipped,omitempty"`
	// Cut is the set of events compared: the lake's up to LakePosition,
	// and the stream's up to StreamSeq.
	Cut     Cut           `json:"cut"`
	Checks  []CheckResult `json:"checks"`
	Seconds float64       `json:"seconds"`
}

// Cut is what a version reflected when it was verified.
type Cut struct {
	LakePosition int64  `json:"lake_position"`
	Stream       string `json:"stream"`
	StreamSeq    int64  `json:"stream_seq"`
}

// CheckResult compares one table with its independent computation.
type CheckResult struct {
	Name          string `json:"name"`
	Table         string `json:"table"`
	OK            bool   `json:"ok"`
	ExpectedRows  int64  `json:"expected_rows"`
	ActualRows    int64  `json:"actual_rows"`
	DifferingRows int64  `json:"differing_rows"`
	// Sums of the check's Sums columns, expected and actual.
	Sums []Sum `json:"sums,omitempty"`
	// Checksums: an order-independent hash of every row (key and values).
	ExpectedChecksum string `json:"expected_checksum"`
	ActualChecksum   string `json:"actual_checksum"`
	// Rows are the first differing rows (at most MaxReportedRows), by key:
	// expected or actual is null for a row only one side has.
	Rows []DifferingRow `json:"rows"`
}

// Sum is one column's total on both sides.
type Sum struct {
	Column   string `json:"column"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
}

// DifferingRow is a row the two sides disagree on.
type DifferingRow struct {
	Key      json.RawMessage `json:"key"`
	Expected json.RawMessage `json:"expected"`
	Actual   json.RawMessage `json:"actual"`
}

// MaxReportedRows bounds the differing rows a check reports.
const MaxReportedRows = 20

// eventsAtCut is the events every Expected query reads: each lake event of
// the projection's types the version reflects, once: those the build read
// (up to the lake position) and those the stream phase applied (up to the
// stream sequence). Not materialized when read once, so a check's own
// filter on type reaches the lake's index.
const eventsAtCut = `events AS (
    SELECT position, stream_seq AS seq, id, type, subject, time, data FROM lake.events
    WHERE type = ANY($1) AND (position <= $2 OR (stream = $3 AND stream_seq <= $4))
)`

// checkSQL builds the comparison of one check: both sides as (key, values)
// in JSON, joined on the key.
func checkSQL(c Check, t Tables) string {
	obj := func(alias string, cols []string) string {
		parts := make([]string, 0, 2*len(cols))
		for _, col := range cols {
			parts = append(parts, "'"+col+"'", alias+"."+col)
		}
		return "jsonb_build_object(" + strings.Join(parts, ", ") + ")"
	}
	actual := "SELECT " + strings.Join(append(append([]string{}, c.Key...), c.Columns...), ", ") + " FROM " + t.Name(c.Table)
	var sums strings.Builder
	for _, col := range c.Sums {
		fmt.Fprintf(&sums, ", (SELECT coalesce(sum((v->>'%[1]s')::numeric), 0)::text FROM exp), (SELECT coalesce(sum((v->>'%[1]s')::numeric), 0)::text FROM act)", col)
	}
	return `WITH ` + eventsAtCut + `,
exp AS (SELECT ` + obj("x", c.Key) + ` AS k, ` + obj("x", c.Columns) + ` AS v FROM (` + t.SQL(c.Expected) + `) x),
act AS (SELECT ` + obj("x", c.Key) + ` AS k, ` + obj("x", c.Columns) + ` AS v FROM (` + actual + `) x),
diff AS (SELECT coalesce(e.k, a.k) AS k, e.v AS ev, a.v AS av FROM exp e FULL JOIN act a ON a.k = e.k
         WHERE e.v IS DISTINCT FROM a.v)
SELECT (SELECT count(*) FROM exp), (SELECT count(*) FROM act), (SELECT count(*) FROM diff),
       (SELECT coalesce(sum(hashtextextended(k::text || v::text, 0)::numeric), 0)::text FROM exp),
       (SELECT coalesce(sum(hashtextextended(k::text || v::text, 0)::numeric), 0)::text FROM act),
       (SELECT coalesce(jsonb_agg(jsonb_build_object('key', k, 'expected', ev, 'actual', av) ORDER BY k::text), '[]')
        FROM (SELECT * FROM diff ORDER BY k::text LIMIT ` + itoa(MaxReportedRows) + `) d)` + sums.String()
}

// runChecks compares every check of s at the cut.
func runChecks(ctx context.Context, db dbtx, s Spec, t Tables, cut Cut) (Report, error) {
	began := time.Now()
	rep := Report{At: began.UTC(), OK: true, Cut: cut, Checks: []CheckResult{}}
	for _, c := range s.Checks {
		res := CheckResult{Name: c.Name, Table: c.Table}
		var rows []byte
		dest := []any{&res.ExpectedRows, &res.ActualRows, &res.DifferingRows, &res.ExpectedChecksum, &res.ActualChecksum, &rows}
		res.Sums = make([]Sum, len(c.Sums))
		for i, col := range c.Sums {
			res.Sums[i].Column = col
			dest = append(dest, &res.Sums[i].Expected, &res.Sums[i].Actual)
		}
		err := db.QueryRow(ctx, checkSQL(c, t), s.Events, cut.LakePosition, cut.Stream, cut.StreamSeq).Scan(dest...)
		if err != nil {
			return rep, fmt.Errorf("projection %s: check %s: %w", s.Name, c.Name, err)
		}
		if err := json.Unmarshal(rows, &res.Rows); err != nil {
			return rep, fmt.Errorf("projection %s: check %s: read its rows: %w", s.Name, c.Name, err)
		}
		res.OK = res.DifferingRows == 0 && res.ExpectedRows == res.ActualRows
		rep.OK = rep.OK && res.OK
		rep.Checks = append(rep.Checks, res)
	}
	rep.Seconds = time.Since(began).Seconds()
	return rep, nil
}

// Describe says in one line what a failed report found.
func (r Report) Describe() string {
	var parts []string
	for _, c := range r.Checks {
		if c.OK {
			continue
		}
		keys := make([]string, 0, len(c.Rows))
		for _, row := range c.Rows {
			keys = append(keys, string(row.Key))
		}
		parts = append(parts, fmt.Sprintf("%s: %d of %d rows differ (expected %d rows); first: %s",
			c.Name, c.DifferingRows, c.ActualRows, c.ExpectedRows, strings.Join(keys, " ")))
	}
	if len(parts) == 0 {
		return "every check agrees"
	}
	return strings.Join(parts, "; ")
}
