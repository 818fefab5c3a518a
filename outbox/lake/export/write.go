package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"gocloud.dev/blob"
)

// Row is one event in a Parquet file: the envelope as typed columns, the
// data as JSON text.
type Row struct {
	Position      int64     `parquet:"position,delta"`
	ID            string    `parquet:"id"`
	Type          string    `parquet:"type,dict"`
	Source        string    `parquet:"source,dict"`
	Subject       string    `parquet:"subject"`
	Time          time.Time `parquet:"time,timestamp(microsecond)"`
	CorrelationID string    `parquet:"correlation_id"`
	CausationID   *string   `parquet:"causation_id,optional"`
	TraceParent   *string   `parquet:"traceparent,optional"`
	Visibility    string    `parquet:"visibility,dict"`
	Stream        string    `parquet:"stream,dict"`
	StreamSeq     *int64    `parquet:"stream_seq,optional"`
	RecordedAt    time.Time `parquet:"recorded_at,timestamp(microsecond)"`
	Data          string    `parquet:"data,json"`
}

// rowsSQL reads a run of the lake in position order.
const rowsSQL = `SELECT position, id::text, type, source, subject, time, correlation_id, causation_id,
	traceparent, visibility, stream, stream_seq, recorded_at, data::text
FROM lake.events WHERE position > $1 AND position <= $2 ORDER BY position`

// fileWriter writes one Parquet file to the target, hashing and counting
// what it writes. The object appears under its name only when Close
// succeeds (fileblob renames a temporary file, S3 completes the upload), so
// a crash leaves no partial file under a listed name.
type fileWriter struct {
	key    string
	typ    string
	bw     *blob.Writer
	cancel context.CancelFunc
	sum    hash.Hash
	bytes  int64
	pw     *parquet.GenericWriter[Row]
	buf    []Row
	rows   int64
	minPos int64
	maxPos int64
}

// rowGroupRows bounds a row group, so a writer holds at most that many
// rows' columns in memory.
const rowGroupRows = 100_000

func newFileWriter(ctx context.Context, b *blob.Bucket, key, typ string) (*fileWriter, error) {
	wctx, cancel := context.WithCancel(ctx)
	bw, err := b.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("export: open %s: %w", key, err)
	}
	fw := &fileWriter{key: key, typ: typ, bw: bw, cancel: cancel, sum: sha256.New()}
	fw.pw = parquet.NewGenericWriter[Row](io.MultiWriter(countTo(&fw.bytes), fw.sum, bw),
		parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.KeyValueMetadata("cairn.type", typ))
	return fw, nil
}

func (fw *fileWriter) add(r Row) error {
	if fw.rows == 0 {
		fw.minPos = r.Position
	}
	fw.rows++
	fw.maxPos = r.Position
	fw.buf = append(fw.buf, r)
	if len(fw.buf) >= 1000 {
		return fw.flush()
	}
	return nil
}

func (fw *fileWriter) flush() error {
	if _, err := fw.pw.Write(fw.buf); err != nil {
		return fmt.Errorf("export: write %s: %w", fw.key, err)
	}
	fw.buf = fw.buf[:0]
	return nil
}

// close finishes the file and returns what the manifest says of it.
func (fw *fileWriter) close() (File, error) {
	defer fw.cancel()
	if err := fw.flush(); err != nil {
		return File{}, err
	}
	if err := fw.pw.Close(); err != nil {
		return File{}, fmt.Errorf("export: finish %s: %w", fw.key, err)
	}
	if err := fw.bw.Close(); err != nil {
		return File{}, fmt.Errorf("export: store %s: %w", fw.key, err)
	}
	return File{Path: fw.key, Type: fw.typ, Rows: fw.rows, MinPosition: fw.minPos, MaxPosition: fw.maxPos,
		SHA256: hex.EncodeToString(fw.sum.Sum(nil)), Bytes: fw.bytes}, nil
}

// abort drops the file: cancelling its writer's context makes Close
// discard what was written.
func (fw *fileWriter) abort() {
	fw.cancel()
	_ = fw.bw.Close()
}

type countWriter struct{ n *int64 }

func (c countWriter) Write(p []byte) (int, error) { *c.n += int64(len(p)); return len(p), nil }

func countTo(n *int64) io.Writer { return countWriter{n} }

// writers is the set of files one export run has open, by key.
type writers struct {
	b     *blob.Bucket
	ctx   context.Context
	open  map[string]*fileWriter
	order []string
}

func (ws *writers) get(key, typ string) (*fileWriter, error) {
	if fw, ok := ws.open[key]; ok {
		return fw, nil
	}
	fw, err := newFileWriter(ws.ctx, ws.b, key, typ)
	if err != nil {
		return nil, err
	}
	ws.open[key] = fw
	ws.order = append(ws.order, key)
	return fw, nil
}

// closeAll finishes every file, in the order they were opened; after an
// error it drops the rest.
func (ws *writers) closeAll() (map[string]File, error) {
	out := map[string]File{}
	var first error
	for _, key := range ws.order {
		fw := ws.open[key]
		if first != nil {
			fw.abort()
			continue
		}
		f, err := fw.close()
		if err != nil {
			first = err
			continue
		}
		out[key] = f
	}
	return out, first
}

func (ws *writers) abortAll() {
	for _, fw := range ws.open {
		fw.abort()
	}
}
