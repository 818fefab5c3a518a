package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/testenv"
)

// seedLake inserts n events into the lake after its head, recorded evenly
// over the span before now, as the mover would have: the exporter's input
// without publishing n events first.
func seedLake(t testing.TB, db *testenv.DB, n int, span time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now().Add(-span)
	if _, err := db.Pool.Exec(ctx, `SELECT lake.create_partition($1), lake.create_partition(now())`, start); err != nil {
		t.Fatal(err)
	}
	_, err := db.Pool.Exec(ctx, `
		WITH h AS (SELECT position FROM lake.head),
		ins AS (
			INSERT INTO lake.events (position, recorded_at, id, type, source, subject, time, correlation_id,
			                         visibility, stream, stream_seq, data)
			SELECT h.position + g, $2::timestamptz + g * $3::interval, gen_random_uuid(),
			       (ARRAY['it.alpha.v1', 'it.beta.v1', 'it.gamma.v1', 'it.delta.v1'])[1 + g % 4], '/cairn/it',
			       'key-' || (g % 1000), $2::timestamptz + g * $3::interval, 'corr-' || (g % 100),
			       'public', 'EVENTS', h.position + g,
			       jsonb_build_object('account_id', 'key-' || (g % 1000), 'amount', g % 10000, 'currency', 'EUR', 'version', g)
			FROM h, generate_series(1, $1::int) g
			RETURNING position, recorded_at)
		UPDATE lake.head SET position = (SELECT max(position) FROM ins),
		       recorded_at = greatest(recorded_at, (SELECT max(recorded_at) FROM ins))`,
		n, start, (span / time.Duration(n+1)).String())
	if err != nil {
		t.Fatal(err)
	}
}

// checkExport verifies a file target against the lake: the manifest keeps
// its promise (contiguous periods, rows adding up, each file once), every
// listed file is complete (its SHA-256 and size, read back as Parquet),
// and each position up to the manifest's is in exactly one file. It
// returns the manifest.
func checkExport(t testing.TB, db *testenv.DB, dir string) *export.Manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, export.ManifestKey))
	if os.IsNotExist(err) {
		return &export.Manifest{}
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := export.Open(context.Background(), db.Pool, export.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	m, err := export.ReadManifest(context.Background(), e.Bucket())
	if err != nil {
		t.Fatalf("manifest %s: %v", raw, err)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	seen := make([]bool, m.Through+1)
	for _, p := range m.Periods {
		for _, f := range p.Files {
			b, err := os.ReadFile(filepath.Join(dir, f.Path))
			if err != nil {
				t.Fatalf("listed file missing: %v", err)
			}
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Bytes {
				t.Fatalf("listed file %s is not the one the manifest describes (partial?)", f.Path)
			}
			rows, err := parquet.Read[export.Row](bytes.NewReader(b), int64(len(b)))
			if err != nil || int64(len(rows)) != f.Rows {
				t.Fatalf("%s: %d rows (%v), the manifest says %d", f.Path, len(rows), err, f.Rows)
			}
			for _, r := range rows {
				if r.Position < 1 || r.Position > m.Through || seen[r.Position] {
					t.Fatalf("%s: position %d out of range or listed twice", f.Path, r.Position)
				}
				seen[r.Position] = true
			}
		}
	}
	for p := int64(1); p <= m.Through; p++ {
		if !seen[p] {
			t.Fatalf("position %d is in no file", p)
		}
	}
	return m
}

// The exporter of the real binary is killed with SIGKILL in the middle of
// writing its files; what it leaves lists no partial or duplicate file,
// and the next process exports every event exactly once.
func TestLakeExportKilledMidFile(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	const n = 600_000
	seedLake(t, db, n, 5*time.Hour)
	dir := t.TempDir()
	env := externalEnv(db, nt)
	env["CAIRN_LAKE_EXPORT_URL"] = "file://" + dir
	env["CAIRN_LAKE_EXPORT_INTERVAL"] = "1s"

	first := startCairn(t, env)
	first.WaitLog("lake export writing", 60*time.Second)
	// Kill it once its first files are being written.
	waitUntil(t, 60*time.Second, "the first files", func() bool { return len(objects(dir)) > 0 })
	time.Sleep(300 * time.Millisecond)
	first.Kill9()
	if _, ok := first.logs.find("lake export done"); ok {
		t.Fatal("the export finished before the kill; the test proves nothing")
	}
	left := objects(dir)
	if len(left) == 0 {
		t.Fatal("the kill left no file behind: it did not come mid-file")
	}
	m := checkExport(t, db, dir)
	t.Logf("killed mid-export: %d objects left, the manifest lists through %d", len(left), m.Through)

	second := startCairn(t, env)
	second.WaitLog("lake export done", 120*time.Second)
	m = checkExport(t, db, dir)
	if m.Through != n {
		t.Fatalf("exported through %d, the lake holds %d", m.Through, n)
	}
	listed := 0
	for _, p := range m.Periods {
		listed += len(p.Files)
	}
	t.Logf("after the restart: %d periods, %d files, through %d", len(m.Periods), listed, m.Through)
}

// objects lists the files under a target's events/ folder.
func objects(dir string) []string {
	var out []string
	_ = filepath.Walk(filepath.Join(dir, "events"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return out
}
