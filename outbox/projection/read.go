package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/errs"
)

// ErrNotLive is returned by Read while no version of the projection is live
// yet (its first build is under way): 503, ask again shortly.
var ErrNotLive = errs.New(errs.Unavailable, "projection_not_ready",
	"the report is being built for the first time; ask again in a moment")

// Reflects says which events an answer reflects, so a client can tell how
// fresh it is: every lake event up to LakePosition, and every event of the
// stream up to StreamSeq.
type Reflects struct {
	Projection   string `json:"projection"`
	Version      int    `json:"version"`
	LakePosition int64  `json:"lake_position"`
	Stream       string `json:"stream"`
	StreamSeq    int64  `json:"stream_seq"`
	// LastEventAt is the time of the newest event applied (null before any).
	LastEventAt *time.Time `json:"last_event_at"`
	// UpdatedAt is when the version last applied a batch or moved on.
	UpdatedAt time.Time `json:"updated_at"`
}

// View is the live version of a projection as one read sees it.
type View struct {
	Tables
	Reflects Reflects
}

// liveSQL reads the live version, its tables and how far it has come.
const liveSQL = `
SELECT v.version, v.tables, v.covered_position, v.stream, v.stream_seq, v.last_event_at, v.updated_at
FROM projection.projections p JOIN projection.versions v ON v.name = p.name AND v.version = p.live_version
WHERE p.name = $1`

// Read runs fn in one read-only transaction on db (repeatable read, so
// everything fn reads and the View's Reflects are one snapshot) with the
// live version's tables. A switch to another version commits in one
// transaction, so a read sees either version whole. Errors: ErrNotLive
// before a first version is live, fn's, or the database's.
func (p *Projection) Read(ctx context.Context, db *pgxpool.Pool, fn func(ctx context.Context, tx pgx.Tx, v View) error) error {
	err := pgx.BeginTxFunc(ctx, db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var (
			v      View
			tables []string
		)
		r := &v.Reflects
		err := tx.QueryRow(ctx, liveSQL, p.spec.Name).Scan(&r.Version, &tables, &r.LakePosition, &r.Stream, &r.StreamSeq, &r.LastEventAt, &r.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotLive
		}
		if err != nil {
			return fmt.Errorf("projection %s: read the live version: %w", p.spec.Name, err)
		}
		r.Projection = p.spec.Name
		v.Tables = tablesFrom(tables)
		return fn(ctx, tx, v)
	})
	return err
}
