package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/testenv"
)

// seed inserts n events into the lake after its head, recorded step apart
// from at on, of three types in turn, as the mover would have.
func seed(t testing.TB, db *testenv.DB, n int, at time.Time, step time.Duration) {
	t.Helper()
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `
		SELECT lake.create_partition(g) FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 day') g;
		`, at.Add(-24*time.Hour), at.Add(time.Duration(n)*step+24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Pool.Exec(ctx, `
		WITH h AS (SELECT position FROM lake.head),
		ins AS (
			INSERT INTO lake.events (position, recorded_at, id, type, source, subject, time, correlation_id,
			                         causation_id, visibility, stream, stream_seq, data)
			SELECT h.position + g, $2::timestamptz + (g - 1) * $3::interval, gen_random_uuid(),
			       (ARRAY['t.alpha.v1', 't.beta.v1', 't.gamma.v1'])[1 + g % 3], '/cairn/t', 'key-' || (g % 17),
			       $2::timestamptz + (g - 1) * $3::interval, 'corr-' || (g % 5), CASE WHEN g % 2 = 0 THEN 'cause' END,
			       'public', 'EVENTS', h.position + g, jsonb_build_object('n', h.position + g, 'text', repeat('x', g % 40))
			FROM h, generate_series(1, $1::int) g
			RETURNING position, recorded_at)
		UPDATE lake.head SET position = (SELECT max(position) FROM ins),
		       recorded_at = greatest(recorded_at, (SELECT max(recorded_at) FROM ins))`, n, at, step.String())
	if err != nil {
		t.Fatal(err)
	}
}

func openExporter(t *testing.T, db *testenv.DB, dir string) *export.Exporter {
	t.Helper()
	e, err := export.Open(context.Background(), db.Pool, export.Options{URL: "file://" + dir, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// verify checks a target against the lake: the manifest keeps its promise,
// every listed file is there with its hash, and holds exactly the events
// of its type and positions, with the lake's data.
func verify(t *testing.T, db *testenv.DB, dir string) *export.Manifest {
	t.Helper()
	ctx := context.Background()
	e := openExporter(t, db, dir)
	m, err := export.ReadManifest(ctx, e.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	want := map[int64]string{}
	rows, err := db.Pool.Query(ctx, `SELECT position, type || ' ' || data::text FROM lake.events WHERE position <= $1`, m.Through)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p int64
		var s string
		if err := rows.Scan(&p, &s); err != nil {
			t.Fatal(err)
		}
		want[p] = s
	}
	seen := map[int64]bool{}
	for _, p := range m.Periods {
		for _, f := range p.Files {
			raw, err := os.ReadFile(filepath.Join(dir, f.Path))
			if err != nil {
				t.Fatalf("listed file %s: %v", f.Path, err)
			}
			if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(raw)) != f.Bytes {
				t.Fatalf("%s: hash or size differs from the manifest", f.Path)
			}
			got, err := parquet.Read[export.Row](bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if int64(len(got)) != f.Rows {
				t.Fatalf("%s: %d rows, the manifest says %d", f.Path, len(got), f.Rows)
			}
			for _, r := range got {
				if seen[r.Position] {
					t.Fatalf("position %d is in two files", r.Position)
				}
				seen[r.Position] = true
				if r.Type != f.Type || want[r.Position] != r.Type+" "+r.Data {
					t.Fatalf("%s position %d: %s %s, the lake has %s", f.Path, r.Position, r.Type, r.Data, want[r.Position])
				}
			}
		}
	}
	if int64(len(seen)) != m.Through || int64(len(want)) != m.Through {
		t.Fatalf("the files hold %d events, the lake %d up to %d", len(seen), len(want), m.Through)
	}
	return m
}

// Closed hours get one file per type; the open hour gets part files, run
// after run, until it ends and is written again whole; the manifest lists
// every event once throughout.
func TestExportClosesPeriodsAndListsEveryEventOnce(t *testing.T) {
	db := testenv.MustDB(t)
	dir := t.TempDir()
	ctx := context.Background()
	now := time.Now().UTC()
	seed(t, db, 3000, now.Add(-3*time.Hour).Truncate(time.Hour).Add(time.Minute), 3*time.Second) // ~2.5 closed hours
	e := openExporter(t, db, dir)
	if _, err := e.ExportOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	m := verify(t, db, dir)
	closed := 0
	for _, p := range m.Periods {
		if p.Closed {
			closed++
			if len(p.Files) != 3 || !strings.Contains(p.Files[0].Path, "/all-") {
				t.Errorf("closed period %s: %d files %v, want one per type", p.Start, len(p.Files), p.Files)
			}
		}
	}
	if closed < 2 {
		t.Fatalf("%d closed periods, want at least 2", closed)
	}

	// Events of the open hour, exported twice as they come: part files.
	seed(t, db, 200, time.Now().UTC(), time.Millisecond)
	if _, err := e.ExportOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	seed(t, db, 100, time.Now().UTC(), time.Millisecond)
	if _, err := e.ExportOnce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	m = verify(t, db, dir)
	last := m.Periods[len(m.Periods)-1]
	if last.Closed || len(last.Files) != 6 {
		t.Fatalf("open period: closed %v, %d files, want 6 part files (3 types, 2 runs)", last.Closed, len(last.Files))
	}

	// The hour ends (the lake's clock is what says so): it is written
	// again whole, and its part files are retired, not listed.
	if _, err := db.Pool.Exec(ctx, `UPDATE lake.head SET recorded_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	r, err := e.ExportOnce(ctx, nil)
	if err != nil || r.Compacted != 1 {
		t.Fatalf("compaction: %+v, %v", r, err)
	}
	m = verify(t, db, dir)
	last = m.Periods[len(m.Periods)-1]
	if !last.Closed || len(last.Files) != 3 || len(m.Retired) != 6 {
		t.Fatalf("after the hour: closed %v, %d files, %d retired", last.Closed, len(last.Files), len(m.Retired))
	}
	if n, _ := e.ExportOnce(ctx, nil); n.Rows != 0 {
		t.Fatalf("a run with nothing new wrote %d rows", n.Rows)
	}
	t.Log(describe(m))
}

func describe(m *export.Manifest) string {
	var b strings.Builder
	for _, p := range m.Periods {
		fmt.Fprintf(&b, "\n%s closed=%v %d-%d: %d files", p.Start.Format(time.RFC3339), p.Closed, p.FirstPosition, p.LastPosition, len(p.Files))
	}
	return b.String()
}
