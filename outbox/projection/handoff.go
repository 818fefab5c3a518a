package projection

import (
	"context"
	"fmt"
)

// The hand-over from the lake to the stream.
//
// A version is built from the lake's events up to position P (every event
// of its types, by position), then fed from the stream. Where on the
// stream must it start so that no event is skipped? JetStream numbers a
// stream's messages 1, 2, 3… without gaps, and the lake records each
// event's stream sequence. Let M be the highest sequence among the lake's
// events of the stream up to P. If the lake holds every sequence from 1 to
// M there (it does unless the relay reordered a publish across P, the lake
// was switched on after the stream began, or an event expired from the
// stream before it was moved), the stream phase starts at M+1: every event
// before it was built from the lake. Otherwise it starts at the first
// sequence the lake lacks, and the events between it and M that the build
// already applied are applied again, which an idempotent projection
// absorbs. Nothing is skipped either way, and the overlap is zero in the
// ordinary case.
//
// This is the seam where outbox/replay's hand-over (seeding a consumer
// from the lake, then the live stream) can take over: handoffSeq and Stream
// are what it replaces.

// handoffSeq returns the stream sequence the stream phase starts at, for a
// build that read the lake up to position upTo.
func handoffSeq(ctx context.Context, db dbtx, stream string, upTo int64) (uint64, error) {
	var maxSeq, n int64
	err := db.QueryRow(ctx, `SELECT coalesce(max(stream_seq), 0), count(stream_seq) FROM lake.events
		WHERE stream = $1 AND position <= $2`, stream, upTo).Scan(&maxSeq, &n)
	if err != nil {
		return 0, fmt.Errorf("projection: hand-over: read the lake's sequences: %w", err)
	}
	if n == maxSeq { // sequences are unique per stream: 1..M are all there
		return uint64(maxSeq) + 1, nil
	}
	// A sequence is missing: start at the first one.
	var first int64
	err = db.QueryRow(ctx, `
SELECT coalesce(min(s) + 1, 1) FROM (
    SELECT stream_seq AS s, lead(stream_seq) OVER (ORDER BY stream_seq) AS next
    FROM lake.events WHERE stream = $1 AND position <= $2 AND stream_seq IS NOT NULL
) x WHERE next IS DISTINCT FROM s + 1 AND next IS NOT NULL`, stream, upTo).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("projection: hand-over: find the first sequence the lake lacks: %w", err)
	}
	var lowest int64
	if err := db.QueryRow(ctx, `SELECT coalesce(min(stream_seq), 1) FROM lake.events WHERE stream = $1 AND position <= $2`,
		stream, upTo).Scan(&lowest); err != nil {
		return 0, fmt.Errorf("projection: hand-over: read the lake's first sequence: %w", err)
	}
	if lowest > 1 { // the lake began after the stream did
		return 1, nil
	}
	return uint64(first), nil
}

// coverWindow bounds how far past its covered position one advance scans.
const coverWindow = 100_000

// advanceCoveredSQL moves a following version's covered position up to the
// lake position before the first lake event of its types it has not
// applied (one whose stream sequence is above its own), within a window;
// nothing is written while it stays put (an idle system writes no WAL).
const advanceCoveredSQL = `
UPDATE projection.versions v SET covered_position = greatest(v.covered_position, c.pos)
FROM (
    SELECT coalesce(
        (SELECT min(position) - 1 FROM lake.events
         WHERE position > $3 AND position <= least(h.position, $3 + $6)
           AND stream = $4 AND stream_seq > $5 AND type = ANY($7)),
        least(h.position, $3 + $6)) AS pos
    FROM lake.head h
) c
WHERE v.name = $1 AND v.version = $2 AND c.pos > v.covered_position`

// lakeHolds reports the highest sequence of stream the lake has taken in.
func lakeHolds(ctx context.Context, db dbtx, stream string) (int64, error) {
	var seq int64
	if err := db.QueryRow(ctx, `SELECT coalesce((streams->>$1)::bigint, 0) FROM lake.head`, stream).Scan(&seq); err != nil {
		return 0, fmt.Errorf("projection: read the lake's sequences: %w", err)
	}
	return seq, nil
}
