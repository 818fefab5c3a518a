package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ManifestKey is where the manifest lives, at the root of the target.
const ManifestKey = "manifest.json"

// Manifest lists every exported file exactly once. Periods are in time
// order and their position ranges are contiguous: the first starts at
// position 1 and each starts right after the one before, so a reader can
// prove it holds every event of the lake up to Through, once. Within a
// period each position is in exactly one file (the file of its type).
type Manifest struct {
	Version int `json:"version"`
	// Period is the span of recorded time one period covers ("1h" or
	// "24h").
	Period string `json:"period"`
	// Through is the last position exported: every event from position 1
	// to Through is in exactly one listed file.
	Through   int64      `json:"through"`
	UpdatedAt time.Time  `json:"updated_at"`
	Periods   []Period   `json:"periods"`
	Retired   []Retired  `json:"retired,omitempty"`
	Writer    WriterInfo `json:"writer"`
}

// Period is one span of recorded time (events by when they entered the
// lake) and its files: one per type once it is closed, and part files,
// each adding the events recorded since the last export, while it is
// open.
type Period struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Closed        bool      `json:"closed"`
	FirstPosition int64     `json:"first_position"`
	LastPosition  int64     `json:"last_position"`
	Rows          int64     `json:"rows"`
	Files         []File    `json:"files"`
}

// File is one Parquet file: the events of one type in one period (or, for
// a part file, a run of it).
type File struct {
	Path        string `json:"path"`
	Type        string `json:"type"`
	Rows        int64  `json:"rows"`
	MinPosition int64  `json:"min_position"`
	MaxPosition int64  `json:"max_position"`
	SHA256      string `json:"sha256"`
	Bytes       int64  `json:"bytes"`
}

// Retired is a file a newer manifest no longer lists (a period's part
// files, once the period was compacted); it is deleted an hour later, so a
// reader still holding the older manifest can finish.
type Retired struct {
	Path string    `json:"path"`
	At   time.Time `json:"at"`
}

// WriterInfo says who wrote the manifest: the exporter's lease holder and
// term.
type WriterInfo struct {
	Holder string `json:"holder"`
	Token  int64  `json:"token"`
}

// Check verifies the manifest's own promise: contiguous periods from
// position 1 to Through, rows adding up, every path listed once.
func (m *Manifest) Check() error {
	next := int64(1)
	paths := map[string]bool{}
	for _, p := range m.Periods {
		if p.FirstPosition != next || p.LastPosition < p.FirstPosition {
			return fmt.Errorf("period %s covers %d-%d, want it to start at %d", p.Start.Format(time.RFC3339), p.FirstPosition, p.LastPosition, next)
		}
		var rows int64
		for _, f := range p.Files {
			if paths[f.Path] {
				return fmt.Errorf("file %s listed twice", f.Path)
			}
			paths[f.Path] = true
			if f.MinPosition < p.FirstPosition || f.MaxPosition > p.LastPosition {
				return fmt.Errorf("file %s (%d-%d) outside its period %d-%d", f.Path, f.MinPosition, f.MaxPosition, p.FirstPosition, p.LastPosition)
			}
			rows += f.Rows
		}
		if rows != p.Rows || rows != p.LastPosition-p.FirstPosition+1 {
			return fmt.Errorf("period %s: files hold %d rows, the period %d, its range %d", p.Start.Format(time.RFC3339), rows, p.Rows, p.LastPosition-p.FirstPosition+1)
		}
		next = p.LastPosition + 1
	}
	if next-1 != m.Through {
		return fmt.Errorf("periods end at %d, through says %d", next-1, m.Through)
	}
	return nil
}

// ReadManifest reads the manifest of a target; a target without one has
// an empty manifest.
func ReadManifest(ctx context.Context, b *blob.Bucket) (*Manifest, error) {
	raw, err := b.ReadAll(ctx, ManifestKey)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &Manifest{Version: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("export: read %s: %w", ManifestKey, err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("export: %s is not a manifest: %w", ManifestKey, err)
	}
	if m.Version != 1 {
		return nil, errors.New("export: manifest version " + fmt.Sprint(m.Version) + " is not 1")
	}
	return &m, nil
}

// writeManifest replaces the manifest in one object write: a reader sees
// the old one or the new one, never a mix.
func writeManifest(ctx context.Context, b *blob.Bucket, m *Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("export: encode manifest: %w", err)
	}
	if err := b.WriteAll(ctx, ManifestKey, raw, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("export: write %s: %w", ManifestKey, err)
	}
	return nil
}
