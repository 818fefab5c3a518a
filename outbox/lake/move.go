package lake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/outbox"
)

// ErrFenced is returned by a move whose fence was false: the caller no
// longer leads, and the rows stay in the outbox for the next leader.
var ErrFenced = errors.New("lake: move fenced: the relay term that asked for it is over")

// lockHeadSQL serialises moves: positions are given under this lock, so
// two moves never interleave theirs.
const lockHeadSQL = `SELECT position, streams FROM lake.head FOR UPDATE`

// rangeSQL lists the rows of a range, for the mover to tell those it has
// no ack for. The difference is taken in Go: NOT IN an array parameter is a
// linear search per row under a generic plan, quadratic in the batch.
const rangeSQL = `
SELECT event_id::text, subject, CASE WHEN subject = ANY($6) THEN payload END FROM outbox.events
WHERE (txid, seq) > ($1, $2) AND (txid, seq) <= ($3, $4)
  AND ($5::timestamptz IS NULL OR created_at <= $5)`

// moveSQL deletes the range from the outbox and inserts it into the lake in
// (txid, seq) order, numbered from lake.head's position. An id already in
// the lake, or twice in the range, goes in once: JetStream deduplicated it
// too (Nats-Msg-Id). recorded_at is one value per move, never below the
// last one, so it never decreases with position. Fields the catalog marks
// secret ($9: type -> paths) are removed from data; the data of rows with
// personal fields is the one sealed in Go ($10: ids, $11: data), and whose
// data they hold goes to privacy.lake_events ($12: people, $13: ids).
const moveSQL = `
WITH sealed AS (
    SELECT DISTINCT ON (id) id, data::jsonb AS data FROM unnest($10::uuid[], $11::text[]) s(id, data)
), moved AS (
    DELETE FROM outbox.events
    WHERE (txid, seq) > ($1, $2) AND (txid, seq) <= ($3, $4)
      AND ($5::timestamptz IS NULL OR created_at <= $5)
    RETURNING txid, seq, event_id, subject, payload
), acks AS (
    SELECT DISTINCT ON (id) id, stream, seq FROM unnest($6::uuid[], $7::text[], $8::bigint[]) a(id, stream, seq)
), fresh AS (
    SELECT DISTINCT ON (m.event_id) m.txid, m.seq, m.event_id, m.subject,
           convert_from(m.payload, 'UTF8')::jsonb AS ce, a.stream, a.seq AS stream_seq
    FROM moved m LEFT JOIN acks a ON a.id = m.event_id
    WHERE NOT EXISTS (SELECT 1 FROM lake.ids i WHERE i.id = m.event_id)
    ORDER BY m.event_id, m.txid, m.seq
), numbered AS (
    SELECT f.*, (SELECT position FROM lake.head) + row_number() OVER (ORDER BY f.txid, f.seq) AS position,
           (SELECT greatest(recorded_at, clock_timestamp()) FROM lake.head) AS recorded_at,
           f.subject LIKE 'events.%' AS public
    FROM fresh f
), ids AS (
    INSERT INTO lake.ids (id, position, recorded_at) SELECT event_id, position, recorded_at FROM numbered
), events AS (
    INSERT INTO lake.events (position, recorded_at, id, type, source, subject, time, correlation_id,
                             causation_id, traceparent, visibility, stream, stream_seq, data)
    SELECT n.position, n.recorded_at, n.event_id, ce->>'type', ce->>'source', ce->>'subject', (ce->>'time')::timestamptz,
           coalesce(nullif(ce->>'correlationid', ''), n.event_id::text), nullif(ce->>'causationid', ''),
           nullif(ce->>'traceparent', ''),
           CASE WHEN public THEN 'public' ELSE 'internal' END,
           coalesce(stream, CASE WHEN public THEN 'EVENTS' ELSE 'INTERNAL' END), stream_seq,
           CASE WHEN $9::jsonb ? (ce->>'type') THEN lake.redact(coalesce(sd.data, ce->'data'), $9::jsonb -> (ce->>'type'))
                ELSE coalesce(sd.data, ce->'data') END
    FROM numbered n LEFT JOIN sealed sd ON sd.id = n.event_id
), personal AS (
    INSERT INTO privacy.lake_events (subject, position, recorded_at)
    SELECT p.subject, n.position, n.recorded_at FROM unnest($12::text[], $13::uuid[]) p(subject, id)
    JOIN numbered n ON n.event_id = p.id
    ON CONFLICT DO NOTHING
), tally AS (
    SELECT count(*) AS n, max(recorded_at) AS at,
           (SELECT jsonb_object_agg(stream, mx) FROM (
               SELECT stream, max(stream_seq) AS mx FROM numbered WHERE stream IS NOT NULL AND stream_seq IS NOT NULL
               GROUP BY stream) s) AS streams
    FROM numbered
)
UPDATE lake.head h SET position = h.position + t.n,
       recorded_at = greatest(h.recorded_at, coalesce(t.at, h.recorded_at)),
       streams = (SELECT coalesce(jsonb_object_agg(k, greatest(coalesce((h.streams->>k)::bigint, 0), coalesce((t.streams->>k)::bigint, 0))), '{}')
                  FROM (SELECT jsonb_object_keys(h.streams) UNION SELECT jsonb_object_keys(coalesce(t.streams, '{}'))) keys(k))
FROM tally t
RETURNING t.n, h.position`

// unacked is a row of a range (first without an ack; payload is read only
// for rows with personal fields).
type unacked struct {
	id, subject string
	payload     []byte
}

// move moves one range in one transaction on conn: fence, head lock and
// the rows of the range in one round trip; the look-up in the streams of
// those without an ack, if any; then the move and the commit in a second.
// It returns how many events entered the lake.
func (m *Mover) move(ctx context.Context, conn *pgx.Conn, r Range) (int64, error) {
	var createdBefore any
	if !r.CreatedBefore.IsZero() {
		createdBefore = r.CreatedBefore
	}
	ids := make([]string, len(r.Acks))
	streams := make([]string, len(r.Acks))
	seqs := make([]int64, len(r.Acks))
	for i, a := range r.Acks {
		ids[i], streams[i], seqs[i] = a.ID, a.Stream, int64(a.Seq)
	}

	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	// A move need not wait for its WAL flush: lost in a crash, it is lost
	// whole (the outbox rows come back with the lake rows gone) and the
	// next leader moves them again. Waiting would add the mover's WAL to
	// every business commit's flush.
	b.Queue(`SET LOCAL synchronous_commit = off`)
	if r.Fence.Cond != nil {
		b.Queue(`SELECT `+r.Fence.Cond("$1"), r.Fence.Token)
	}
	b.Queue(lockHeadSQL)
	b.Queue(rangeSQL, r.From.TxID, r.From.Seq, r.To.TxID, r.To.Seq, createdBefore, m.personal)
	br := conn.SendBatch(ctx, b)
	inRange, head, err := readFirstRound(br, r.Fence.Cond != nil)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rollback(conn)
		return 0, err
	}

	acked := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		acked[id] = struct{}{}
	}
	var missing []unacked
	for _, u := range inRange {
		if _, ok := acked[u.id]; !ok {
			missing = append(missing, u)
		}
	}
	if len(missing) > 0 {
		// The pool may end transactions left idle for a few seconds (a
		// frozen leader must not keep the head locked); a look-up in the
		// streams can take longer than that, bounded by MoveTimeout.
		if _, err := conn.Exec(ctx, fmt.Sprintf(`SET LOCAL idle_in_transaction_session_timeout = %d`, (m.opt.MoveTimeout+time.Second).Milliseconds())); err != nil {
			rollback(conn)
			return 0, fmt.Errorf("lake: allow the look-up: %w", err)
		}
		found, err := m.lookUp(ctx, missing, head)
		if err != nil {
			rollback(conn)
			return 0, err
		}
		for _, u := range missing {
			stream := streamOf(u.subject)
			if seq, ok := found[u.id]; ok {
				ids, streams, seqs = append(ids, u.id), append(streams, stream), append(seqs, int64(seq))
			}
		}
	}

	seal, err := sealRows(ctx, conn, inRange)
	if err != nil {
		rollback(conn)
		return 0, err
	}

	b = &pgx.Batch{}
	var n, position int64
	b.Queue(moveSQL, r.From.TxID, r.From.Seq, r.To.TxID, r.To.Seq, createdBefore, ids, streams, seqs, m.secrets,
		seal.ids, seal.datas, seal.subjects, seal.subjIDs).
		QueryRow(func(row pgx.Row) error { return row.Scan(&n, &position) })
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		rollback(conn)
		return 0, fmt.Errorf("lake: move: %w", err)
	}
	return n, nil
}

// readFirstRound reads the fence, the head and the rows of the range.
func readFirstRound(br pgx.BatchResults, fenced bool) ([]unacked, map[string]uint64, error) {
	for range 2 { // BEGIN, SET LOCAL
		if _, err := br.Exec(); err != nil {
			return nil, nil, fmt.Errorf("lake: begin move: %w", err)
		}
	}
	if fenced {
		var ok bool
		if err := br.QueryRow().Scan(&ok); err != nil {
			return nil, nil, fmt.Errorf("lake: check fence: %w", err)
		}
		if !ok {
			return nil, nil, ErrFenced
		}
	}
	var position int64
	var head map[string]uint64
	if err := br.QueryRow().Scan(&position, &head); err != nil {
		return nil, nil, fmt.Errorf("lake: lock head: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("lake: rows of the range: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (unacked, error) {
		var u unacked
		err := row.Scan(&u.id, &u.subject, &u.payload)
		return u, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lake: rows of the range: %w", err)
	}
	return out, head, nil
}

// lookUp finds the stream sequences of rows without an ack, each in its
// stream, starting a little below the highest sequence the lake holds for
// it: an event stored below that is only one whose first publish failed and
// was retried after later ones, within a batch or two.
func (m *Mover) lookUp(ctx context.Context, missing []unacked, head map[string]uint64) (map[string]uint64, error) {
	byStream := map[string][]string{}
	for _, u := range missing {
		s := streamOf(u.subject)
		byStream[s] = append(byStream[s], u.id)
	}
	found := map[string]uint64{}
	for stream, ids := range byStream {
		if m.opt.Lookup == nil {
			break
		}
		from := uint64(1)
		if h := head[stream]; h > lookBack {
			from = h - lookBack
		}
		got, err := m.opt.Lookup.Seqs(ctx, stream, from, ids)
		if err != nil {
			return nil, fmt.Errorf("lake: look up %d sequence(s) in %s: %w", len(ids), stream, err)
		}
		for id, seq := range got {
			found[id] = seq
		}
		if n := len(ids) - len(got); n > 0 {
			m.log.Warn("lake: events without a publish ack are not in their stream any more; they enter the lake without a stream sequence",
				"stream", stream, "count", n)
		}
	}
	return found, nil
}

// lookBack is how far below the lake's highest sequence of a stream a
// look-up starts.
const lookBack = 10_000

// streamOf is the stream a subject is stored in.
func streamOf(subject string) string {
	if strings.HasPrefix(subject, outbox.InternalPrefix) {
		return outbox.InternalStream
	}
	return outbox.PublicStream
}

// rollback ends a failed move's transaction, if the connection still can.
func rollback(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	_, _ = conn.Exec(ctx, `ROLLBACK`)
}

// noPartition reports the error of a row whose month has no partition yet.
func noPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition")
}
