package integration_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lakeRow is one row of lake.events as the completeness check reads it.
type lakeRow struct {
	Position  int64
	ID        string
	Stream    string
	StreamSeq *int64
}

// waitLakeMoved waits until the outbox is empty: every published event has
// been moved into the lake. It returns what is left when it gives up.
func waitLakeMoved(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events`).Scan(&n); err != nil {
			return -1, err
		}
		if n == 0 || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkLake compares the lake with both streams read in full: every event
// id of a stream is in the lake exactly once, at that stream and sequence;
// the lake holds nothing else; positions run 1, 2, 3… without a gap.
func checkLake(ctx context.Context, pool *pgxpool.Pool, f *findings, streams map[string][]streamMsg) error {
	rows, err := pool.Query(ctx, `SELECT position, id::text, stream, stream_seq FROM lake.events ORDER BY position`)
	if err != nil {
		return fmt.Errorf("read the lake: %w", err)
	}
	defer rows.Close()
	lake := map[string]lakeRow{}
	var n int64
	for rows.Next() {
		var r lakeRow
		if err := rows.Scan(&r.Position, &r.ID, &r.Stream, &r.StreamSeq); err != nil {
			return fmt.Errorf("read the lake: %w", err)
		}
		n++
		if r.Position != n {
			f.add("lake: position gap or repeat", "row %d has position %d", n, r.Position)
			n = r.Position
		}
		if _, dup := lake[r.ID]; dup {
			f.add("lake: event twice", "%s", r.ID)
		}
		lake[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the lake: %w", err)
	}
	inStreams := map[string]bool{}
	for name, msgs := range streams {
		for _, m := range msgs {
			inStreams[m.MsgID] = true
			r, ok := lake[m.MsgID]
			switch {
			case !ok:
				f.add("lake: event of a stream missing", "%s seq %d: %s %s", name, m.Seq, m.Event.Type, m.MsgID)
			case r.Stream != name || r.StreamSeq == nil || uint64(*r.StreamSeq) != m.Seq:
				seq := "null"
				if r.StreamSeq != nil {
					seq = fmt.Sprint(*r.StreamSeq)
				}
				f.add("lake: stream sequence differs", "%s is %s seq %d in the stream, %s %s in the lake", m.MsgID, name, m.Seq, r.Stream, seq)
			}
		}
	}
	for id := range lake {
		if !inStreams[id] {
			f.add("lake: event in no stream", "%s", id)
		}
	}
	return nil
}
