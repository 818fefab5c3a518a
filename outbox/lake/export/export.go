// Package export writes the lake as Parquet files for analytics: one file
// per closed period and event type, and while a period is open, a part
// file per type every run with what entered the lake since the last one.
// A manifest (manifest.json) lists every file exactly once with its
// position range, row count and SHA-256; periods cover positions 1, 2, 3…
// without a gap, so a reader can prove it has every event once.
//
// Crash safety: a file is written under its final name in one object write
// that completes only on success (a temporary file renamed, an S3 upload
// completed), and the manifest is replaced, in one object write, only after
// every file it adds is complete. A kill -9 mid-file therefore leaves at
// most an unlisted object, removed by a later run; the next run writes
// again from the manifest's position.
//
// The target is a gocloud.dev/blob URL: file:///folder or
// s3://bucket/prefix?region=…&endpoint=…. One replica exports at a time,
// the holder of the lease "lake-export".
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/s3blob"   // s3://
	"gocloud.dev/gcerrors"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// Options tune an Exporter.
type Options struct {
	// URL is the target: file:///absolute/folder or s3://bucket/prefix.
	URL string
	// Interval is how often a run exports what is new (default 5m).
	Interval time.Duration
	// Period is the span one closed file covers: an hour or a day
	// (default an hour).
	Period time.Duration
	// Holder names this process in the lease and the manifest.
	Holder string
	Logger *slog.Logger
}

// Exporter writes the lake to the target.
type Exporter struct {
	pool   *pgxpool.Pool
	bucket *blob.Bucket
	opt    Options
	log    *slog.Logger
	// lastOK is when the last run that succeeded in this process started
	// (Unix nanoseconds; 0 if none did).
	lastOK atomic.Int64
}

// Open opens the target. Errors: a URL gocloud cannot open.
func Open(ctx context.Context, pool *pgxpool.Pool, opt Options) (*Exporter, error) {
	if opt.Interval <= 0 {
		opt.Interval = 5 * time.Minute
	}
	if opt.Period <= 0 {
		opt.Period = time.Hour
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	b, err := openBucket(ctx, opt.URL)
	if err != nil {
		return nil, err
	}
	return &Exporter{pool: pool, bucket: b, opt: opt, log: opt.Logger.With("component", "lake-export")}, nil
}

// openBucket opens a file:// or s3:// target. A file target's folder is
// created, its temporary files are written beside the final ones (a rename
// across file systems would fail), and no attribute sidecar files are
// written. The path of an s3 URL is the key prefix.
func openBucket(ctx context.Context, raw string) (*blob.Bucket, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("export: target %q: %w", raw, err)
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		for k, v := range map[string]string{"create_dir": "1", "no_tmp_dir": "1", "metadata": "skip"} {
			if !q.Has(k) {
				q.Set(k, v)
			}
		}
	case "s3":
		if p := strings.Trim(u.Path, "/"); p != "" && !q.Has("prefix") {
			q.Set("prefix", p+"/")
		}
		u.Path = ""
	default:
		return nil, fmt.Errorf("export: target %q: want file:// or s3://", raw)
	}
	u.RawQuery = q.Encode()
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("export: open target: %w", err)
	}
	return b, nil
}

// Close closes the target.
func (e *Exporter) Close() error { return e.bucket.Close() }

// Bucket is the target, for readers in tests.
func (e *Exporter) Bucket() *blob.Bucket { return e.bucket }

// Run exports every Interval while this replica holds the lease
// "lake-export" (on leasePool), until ctx ends.
func (e *Exporter) Run(ctx context.Context, leasePool *pgxpool.Pool) error {
	l := lease.New(leasePool, "lake-export", lease.Options{Holder: e.opt.Holder, Logger: e.opt.Logger})
	return l.Run(ctx, func(ctx context.Context, t *lease.Term) error {
		for {
			r, err := e.ExportOnce(ctx, t)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				e.log.Warn("lake export failed; the next run starts again from the manifest", "err", err)
			} else if r.Rows > 0 || r.Compacted > 0 {
				e.log.Info("lake export done", "through", r.Through, "rows", r.Rows, "files", r.Files,
					"compacted_periods", r.Compacted, "seconds", r.Duration.Seconds())
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.opt.Interval):
			}
		}
	})
}

// Report is what one run did.
type Report struct {
	Through   int64 // last position exported
	Rows      int64 // rows written (a compacted period's again)
	Files     int
	Bytes     int64
	Compacted int // periods closed into one file per type
	Duration  time.Duration
}

// bumpHeadSQL moves lake.head's recorded_at up to now, under the lock
// every move takes: a later move records its rows at or after this time,
// so every period that ends by it is closed for good.
const bumpHeadSQL = `UPDATE lake.head SET recorded_at = greatest(recorded_at, clock_timestamp())
	RETURNING position, recorded_at`

// ExportOnce exports what entered the lake since the manifest's position,
// and compacts the open period if it has closed. term, if not nil, must
// still be valid right before the manifest is replaced. Errors: the
// database's, the target's, or an expired term; nothing is listed then.
func (e *Exporter) ExportOnce(ctx context.Context, term *lease.Term) (Report, error) {
	start := time.Now()
	rep, err := e.exportOnce(ctx, term, start)
	if err == nil {
		e.lastOK.Store(start.UnixNano())
	}
	return rep, err
}

// LastSuccess is when the last export run that succeeded in this process
// started (one with nothing new to write included), zero if none did: the
// target holds every event that entered the lake before then. Only the
// replica holding the lease exports, so only its figure moves.
func (e *Exporter) LastSuccess() time.Time {
	if ns := e.lastOK.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

func (e *Exporter) exportOnce(ctx context.Context, term *lease.Term, start time.Time) (Report, error) {
	var rep Report
	var head int64
	var now time.Time
	if err := e.pool.QueryRow(ctx, bumpHeadSQL).Scan(&head, &now); err != nil {
		return rep, fmt.Errorf("export: read the lake's head: %w", err)
	}
	m, err := ReadManifest(ctx, e.bucket)
	if err != nil {
		return rep, err
	}
	if m.Period == "" {
		m.Period = e.opt.Period.String()
	} else if m.Period != e.opt.Period.String() {
		return rep, fmt.Errorf("export: the target was exported by periods of %s, not %s: export to a new target", m.Period, e.opt.Period)
	}
	rep.Through = m.Through

	// The open period is the manifest's last, unless closed. Once it has
	// ended it is written again whole, one file per type.
	var open *Period
	if n := len(m.Periods); n > 0 && !m.Periods[n-1].Closed {
		open = &m.Periods[n-1]
	}
	compact := open != nil && !open.End.After(now)
	from := m.Through
	if compact {
		from = open.FirstPosition - 1
	}
	if head <= m.Through && !compact {
		return rep, e.cleanUp(ctx, m, now, term)
	}

	e.log.Info("lake export writing", "from", from, "head", head, "compact", compact)
	ws := &writers{b: e.bucket, ctx: ctx, open: map[string]*fileWriter{}}
	periods, err := e.writeRun(ctx, ws, from, head, m.Through, now)
	if err != nil {
		ws.abortAll()
		return rep, err
	}
	files, err := ws.closeAll()
	if err != nil {
		return rep, err
	}

	next := *m
	next.Periods = append([]Period(nil), m.Periods...)
	if compact {
		for _, f := range open.Files {
			next.Retired = append(next.Retired, Retired{Path: f.Path, At: now})
		}
		next.Periods = next.Periods[:len(next.Periods)-1]
		rep.Compacted++
	}
	for _, p := range periods {
		pf := make([]File, 0, len(p.keys))
		for _, k := range p.keys {
			f := files[k]
			pf = append(pf, f)
			rep.Rows, rep.Files, rep.Bytes = rep.Rows+f.Rows, rep.Files+1, rep.Bytes+f.Bytes
		}
		if n := len(next.Periods); n > 0 && !next.Periods[n-1].Closed && next.Periods[n-1].Start.Equal(p.start) {
			last := &next.Periods[n-1]
			last.Files = append(append([]File(nil), last.Files...), pf...)
			last.LastPosition, last.Rows = p.last, last.Rows+p.rows
			continue
		}
		next.Periods = append(next.Periods, Period{Start: p.start, End: p.start.Add(e.opt.Period), Closed: p.closed,
			FirstPosition: p.first, LastPosition: p.last, Rows: p.rows, Files: pf})
	}
	next.Through, next.UpdatedAt = head, now
	if term != nil {
		next.Writer = WriterInfo{Holder: term.Holder, Token: term.Token}
	}
	if err := next.Check(); err != nil {
		return rep, fmt.Errorf("export: the new manifest would be wrong, so it is not written: %w", err)
	}
	if term != nil {
		if err := term.Check(); err != nil {
			return rep, fmt.Errorf("export: the lease ended before the manifest was written: %w", err)
		}
	}
	if err := writeManifest(ctx, e.bucket, &next); err != nil {
		return rep, err
	}
	rep.Through, rep.Duration = head, time.Since(start)
	return rep, e.cleanUp(ctx, &next, now, term)
}

// runPeriod is what one run wrote of one period.
type runPeriod struct {
	start       time.Time
	closed      bool
	first, last int64
	rows        int64
	keys        []string
}

// writeRun streams the lake's rows after from up to head, in position
// order, into files: whole-period files for periods that have ended by
// now, part files for the rows after through of the period still open.
func (e *Exporter) writeRun(ctx context.Context, ws *writers, from, head, through int64, now time.Time) ([]*runPeriod, error) {
	rows, err := e.pool.Query(ctx, rowsSQL, from, head)
	if err != nil {
		return nil, fmt.Errorf("export: read the lake: %w", err)
	}
	defer rows.Close()
	var out []*runPeriod
	var cur *runPeriod
	var r Row
	var data string
	for rows.Next() {
		if err := rows.Scan(&r.Position, &r.ID, &r.Type, &r.Source, &r.Subject, &r.Time, &r.CorrelationID,
			&r.CausationID, &r.TraceParent, &r.Visibility, &r.Stream, &r.StreamSeq, &r.RecordedAt, &data); err != nil {
			return nil, fmt.Errorf("export: read the lake: %w", err)
		}
		r.Data, r.Time, r.RecordedAt = data, r.Time.UTC(), r.RecordedAt.UTC()
		ps := r.RecordedAt.Truncate(e.opt.Period)
		closed := !ps.Add(e.opt.Period).After(now)
		if !closed && r.Position <= through {
			continue // in the open period's part files already
		}
		if cur == nil || !cur.start.Equal(ps) {
			cur = &runPeriod{start: ps, closed: closed, first: r.Position}
			out = append(out, cur)
		}
		kind := fmt.Sprintf("part-%012d-%012d", through+1, head)
		if closed {
			kind = fmt.Sprintf("all-%012d", cur.first)
		}
		key := fmt.Sprintf("events/period=%s/type=%s/%s.parquet", periodName(ps, e.opt.Period), r.Type, kind)
		fw, err := ws.get(key, r.Type)
		if err != nil {
			return nil, err
		}
		if fw.rows == 0 {
			cur.keys = append(cur.keys, key)
		}
		if err := fw.add(r); err != nil {
			return nil, err
		}
		cur.last, cur.rows = r.Position, cur.rows+1
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("export: read the lake: %w", err)
	}
	return out, nil
}

// periodName names a period's folder: 2026-11-30T10 for an hour,
// 2026-11-30 for a day.
func periodName(start time.Time, period time.Duration) string {
	if period >= 24*time.Hour {
		return start.Format("2006-01-02")
	}
	return start.Format("2006-01-02T15")
}

// retireAfter is how long a file no manifest lists any more is kept, for
// readers that still hold an older manifest.
const retireAfter = time.Hour

// cleanUp deletes retired files an hour after they were retired, and
// objects under events/ that no manifest ever listed (a run that died
// before its manifest was written) once they are an hour old.
func (e *Exporter) cleanUp(ctx context.Context, m *Manifest, now time.Time, term *lease.Term) error {
	listed := map[string]bool{}
	for _, p := range m.Periods {
		for _, f := range p.Files {
			listed[f.Path] = true
		}
	}
	kept := m.Retired[:0]
	changed := false
	for _, r := range m.Retired {
		listed[r.Path] = true
		if now.Sub(r.At) < retireAfter {
			kept = append(kept, r)
			continue
		}
		if err := e.bucket.Delete(ctx, r.Path); err != nil && !isNotFound(err) {
			return fmt.Errorf("export: delete retired %s: %w", r.Path, err)
		}
		changed = true
	}
	it := e.bucket.List(&blob.ListOptions{Prefix: "events/"})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("export: list the target: %w", err)
		}
		if obj.IsDir || listed[obj.Key] || now.Sub(obj.ModTime) < retireAfter {
			continue
		}
		if err := e.bucket.Delete(ctx, obj.Key); err != nil && !isNotFound(err) {
			return fmt.Errorf("export: delete unlisted %s: %w", obj.Key, err)
		}
	}
	if !changed {
		return nil
	}
	m.Retired = kept
	if term != nil {
		if err := term.Check(); err != nil {
			return fmt.Errorf("export: the lease ended before the manifest was written: %w", err)
		}
	}
	return writeManifest(ctx, e.bucket, m)
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
