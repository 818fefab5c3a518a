package export_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"

	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/testenv"
)

// The export to S3-compatible storage, against a real S3 API server in the
// test's process (gofakes3, on loopback): the same manifest and files, under
// the URL's prefix, read back through the S3 API.
func TestExportToS3(t *testing.T) {
	srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	db := testenv.MustDB(t)
	seed(t, db, 250_000, time.Now().UTC().Add(-2*time.Hour), 25*time.Millisecond)
	url := "s3://analytics/cairn/lake?region=us-east-1&use_path_style=true&disable_https=true&endpoint=" + srv.URL
	e, err := export.Open(context.Background(), db.Pool, export.Options{URL: url, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	r, err := e.ExportOnce(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := export.ReadManifest(ctx, e.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil || m.Through != 250_000 {
		t.Fatalf("manifest through %d: %v", m.Through, err)
	}
	rows := 0
	for _, p := range m.Periods {
		for _, f := range p.Files {
			raw, err := e.Bucket().ReadAll(ctx, f.Path)
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != f.SHA256 {
				t.Fatalf("%s: hash differs", f.Path)
			}
			got, err := parquet.Read[export.Row](bytes.NewReader(raw), int64(len(raw)))
			if err != nil || int64(len(got)) != f.Rows {
				t.Fatalf("%s: %d rows, %v", f.Path, len(got), err)
			}
			rows += len(got)
		}
	}
	if rows != 250_000 {
		t.Fatalf("%d rows read back, want 250000", rows)
	}
	// The path of the URL is the prefix of every object.
	whole, err := blob.OpenBucket(ctx, "s3://analytics?region=us-east-1&use_path_style=true&disable_https=true&endpoint="+srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if ok, err := whole.Exists(ctx, "cairn/lake/"+export.ManifestKey); !ok || err != nil {
		t.Fatalf("no manifest at cairn/lake/manifest.json: %v", err)
	}
	t.Logf("exported %d rows in %d files, %d bytes, in %s", r.Rows, r.Files, r.Bytes, r.Duration.Round(time.Millisecond))
}
