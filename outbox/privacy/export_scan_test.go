package privacy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/outbox/privacy"
	"github.com/cairn-dev/cairn/testenv"
)

// exportLake runs one export of the app's lake into dir (a folder of its
// own, so no exporter of the app races it) and returns the manifest.
func exportLake(t *testing.T, a *testenv.App, dir string) *export.Manifest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := export.Open(ctx, a.DB.Pool, export.Options{URL: "file://" + dir, Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.ExportOnce(ctx, nil); err != nil {
		t.Fatalf("export the lake: %v", err)
	}
	m, err := export.ReadManifest(ctx, e.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

// exportScan is what a folder of export files holds about one person.
type exportScan struct {
	files  int
	rows   int
	plain  []string // where the plain text was found: file and column, or the manifest
	sealed int      // personal fields of the subject's events that hold a sealed value
	clear  int      // personal fields of the subject's events that hold anything else but null
}

// scanExport reads every file under dir: the manifest as text, and every
// Parquet file decoded value by value, column by column (not its
// compressed bytes, in which a plain text would not show), plus its
// footer's key-value metadata. It looks for plain in every value, and
// checks each personal field of the events that hold subject's data.
func scanExport(t *testing.T, dir, plain, subject string) exportScan {
	t.Helper()
	var s exportScan
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name, _ := filepath.Rel(dir, path)
		if bytes.Contains(raw, []byte(plain)) {
			s.plain = append(s.plain, name+" (its bytes)")
		}
		if !strings.HasSuffix(path, ".parquet") {
			if name != export.ManifestKey {
				t.Errorf("an export file that is neither the manifest nor Parquet: %s", name)
			}
			return nil
		}
		s.files++
		f, err := parquet.OpenFile(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			return err
		}
		for _, kv := range f.Metadata().KeyValueMetadata {
			if strings.Contains(kv.Key+kv.Value, plain) {
				s.plain = append(s.plain, name+" (metadata "+kv.Key+")")
			}
		}
		cols := f.Schema().Columns()
		for _, rg := range f.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 64)
			for {
				n, err := rows.ReadRows(buf)
				for _, row := range buf[:n] {
					for _, v := range row {
						if strings.Contains(valueText(v), plain) {
							s.plain = append(s.plain, name+" (column "+strings.Join(cols[v.Column()], ".")+")")
						}
					}
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					_ = rows.Close()
					return err
				}
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		typed, err := parquet.Read[export.Row](bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			return err
		}
		for _, r := range typed {
			s.rows++
			if !contains(privacy.Subjects(r.Type, r.Subject, json.RawMessage(r.Data)), subject) {
				continue
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(r.Data), &doc); err != nil {
				return err
			}
			for _, fld := range outbox.PersonalFields(r.Type) {
				switch v := fieldAt(doc, fld.Path).(type) {
				case nil:
				case string:
					if outbox.IsSealed(v) {
						s.sealed++
					} else {
						s.clear++
					}
				default:
					s.clear++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan the export in %s: %v", dir, err)
	}
	return s
}

// valueText is a decoded Parquet value as text: a string or JSON column's
// bytes, any other kind's printed form.
func valueText(v parquet.Value) string {
	if v.IsNull() {
		return ""
	}
	if k := v.Kind(); k == parquet.ByteArray || k == parquet.FixedLenByteArray {
		return string(v.ByteArray())
	}
	return v.String()
}

// fieldAt returns the value at a dotted path of a JSON object, nil if none.
func fieldAt(doc map[string]any, path string) any {
	var v any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
