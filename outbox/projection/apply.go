package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// createBatchSQL makes the connection's staging table. ON COMMIT DELETE
// ROWS empties it at every commit, so it is made once per connection
// rather than once per batch (which would churn the catalog).
const createBatchSQL = `CREATE TEMP TABLE IF NOT EXISTS projection_batch (
    position bigint,
    seq      bigint,
    id       uuid        NOT NULL,
    type     text        NOT NULL,
    subject  text        NOT NULL,
    time     timestamptz NOT NULL,
    data     jsonb       NOT NULL
) ON COMMIT DELETE ROWS`

// stageLakeSQL stages the lake's events of the projection's types in a
// range of positions, without them leaving the server.
const stageLakeSQL = `INSERT INTO ` + BatchTable + ` (position, seq, id, type, subject, time, data)
SELECT position, stream_seq, id, type, subject, time, data FROM lake.events
WHERE position > $1 AND position <= $2 AND type = ANY($3)`

// stageEventsSQL stages events read from the stream. Time and data are
// parsed by PostgreSQL from the text the CloudEvent carried, exactly as
// the lake parsed them, so an event applied from either source is the
// same to the last microsecond.
const stageEventsSQL = `INSERT INTO ` + BatchTable + ` (position, seq, id, type, subject, time, data)
SELECT nullif(u.position, 0), nullif(u.seq, 0), u.id::uuid, u.type, u.subject, u.time::timestamptz, u.data::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS u(position, seq, id, type, subject, time, data)`

// checkpointSQL records how far a version got, in the transaction that
// applied the batch: the lake position built up to, the last stream
// sequence applied, the events applied and the newest event's time.
const checkpointSQL = `UPDATE projection.versions SET
    lake_position = greatest(lake_position, $3),
    covered_position = CASE WHEN state = 'building' THEN greatest(covered_position, $3) ELSE covered_position END,
    stream_seq = greatest(stream_seq, $4),
    applied = applied + (SELECT count(*) FROM ` + BatchTable + `),
    last_event_at = greatest(last_event_at, (SELECT max(time) FROM ` + BatchTable + `)),
    pending = $5, updated_at = clock_timestamp()
WHERE name = $1 AND version = $2`

// analyzeAbove is the batch size from which the staged batch is analyzed
// before the apply statements plan their joins over it.
const analyzeAbove = 500

// ensureBatchTable makes the staging table on conn.
func ensureBatchTable(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, createBatchSQL); err != nil {
		return fmt.Errorf("projection: make the staging table: %w", err)
	}
	return nil
}

// step is one transaction of a version's holder: fenced by its lease,
// optionally staging a batch and applying it, and recording a checkpoint;
// more statements may follow (a state change).
type step struct {
	lease string
	token int64
	// stage queues the statement that fills the batch; nil for none.
	stage func(b *pgx.Batch)
	// analyze: the batch may be large.
	analyze bool
	// apply are the spec's statements, with physical table names.
	apply []string
	// checkpoint, if name is set.
	name         string
	version      int
	lakePos, seq int64
	pending      int64
	then         []queued
	// durable: the commit waits for its WAL flush (a switch: once
	// queries saw the new version, a crash must not take it back).
	durable bool
}

type queued struct {
	sql  string
	args []any
}

// run commits the step in one round trip: BEGIN, the fence, the batch, the
// apply statements, the checkpoint, the rest and COMMIT go in one pipeline.
// A projection's commit need not wait for its WAL flush: lost in a crash,
// the batch is lost with its checkpoint and applied again.
func (s step) run(ctx context.Context, conn *pgx.Conn) error {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	if !s.durable {
		b.Queue(`SET LOCAL synchronous_commit = off`)
	}
	b.Queue(`SELECT projection.fence($1, $2)`, s.lease, s.token)
	if s.stage != nil {
		s.stage(b)
		if s.analyze {
			b.Queue(`ANALYZE ` + BatchTable)
		}
		for _, q := range s.apply {
			b.Queue(q)
		}
	}
	if s.name != "" {
		b.Queue(checkpointSQL, s.name, s.version, s.lakePos, s.seq, s.pending)
	}
	for _, q := range s.then {
		b.Queue(q.sql, q.args...)
	}
	b.Queue(`COMMIT`)
	err := conn.SendBatch(ctx, b).Close()
	if err != nil {
		// After an error the server skipped the rest, COMMIT included:
		// the transaction is still open, aborted.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, `ROLLBACK`); rerr != nil {
			conn.Close(rctx) // nothing else may run on it
		}
		return err
	}
	return nil
}

// fenced reports whether err is the fence's: the lease has another
// token now, and the term is over.
func fenced(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == fenceCode
}

// fenceCode is the SQLSTATE projection.fence raises.
const fenceCode = "PJ001"

// stageEvents queues the staging of events.
func stageEvents(events []Event) func(b *pgx.Batch) {
	return func(b *pgx.Batch) {
		n := len(events)
		pos, seq := make([]int64, 0, n), make([]int64, 0, n)
		ids, types, subjects, times, data := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		for _, e := range events {
			if e.ID == "" { // not an event (the stream's sequence only): nothing to apply
				continue
			}
			pos, seq = append(pos, e.Position), append(seq, int64(e.Seq))
			ids, types, subjects = append(ids, e.ID), append(types, e.Type), append(subjects, e.Subject)
			times, data = append(times, e.Time), append(data, string(e.Data))
		}
		b.Queue(stageEventsSQL, pos, seq, ids, types, subjects, times, data)
	}
}

// stageLake queues the staging of the lake's events of types in (from, to].
func stageLake(from, to int64, types []string) func(b *pgx.Batch) {
	return func(b *pgx.Batch) { b.Queue(stageLakeSQL, from, to, types) }
}

// ApplyEvents stages events on conn and applies them to version of spec
// in one transaction, without a lease or a checkpoint: for tests that
// feed a projection by hand, and for tools. conn must be a connection of
// its own (the staging table is per connection).
func ApplyEvents(ctx context.Context, conn *pgx.Conn, s Spec, version int, events []Event) error {
	if err := ensureBatchTable(ctx, conn); err != nil {
		return err
	}
	t := TablesOf(s, version)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	stageEvents(events)(b)
	if len(events) >= analyzeAbove {
		b.Queue(`ANALYZE ` + BatchTable)
	}
	for _, q := range s.Apply {
		b.Queue(t.SQL(q))
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		return fmt.Errorf("projection %s v%d: apply %d events: %w", s.Name, version, len(events), err)
	}
	return nil
}

// CreateTables makes version's tables of spec on db, in one transaction:
// for tests and tools; the runtime makes them itself.
func CreateTables(ctx context.Context, conn *pgx.Conn, s Spec, version int) error {
	t := TablesOf(s, version)
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range s.Create {
			if _, err := tx.Exec(ctx, t.SQL(q)); err != nil {
				return fmt.Errorf("projection %s v%d: create: %w", s.Name, version, err)
			}
		}
		return nil
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
