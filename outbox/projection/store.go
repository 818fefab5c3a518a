package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// dbtx is what the store's reads run on: a pool, a connection or a tx.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// State is where a version stands.
type State string

// The states of a version.
const (
	Building   State = "building"
	CatchingUp State = "catching_up"
	Verifying  State = "verifying"
	Live       State = "live"
	Failed     State = "failed"
	Retired    State = "retired"
)

// Version is one version's row in projection.versions.
type Version struct {
	Name            string          `json:"-"`
	Version         int             `json:"version"`
	State           State           `json:"state"`
	Tables          []string        `json:"tables"`
	Stream          string          `json:"stream"`
	BuildTarget     int64           `json:"build_target"`
	LakePosition    int64           `json:"lake_position"`
	HandoffSeq      *int64          `json:"handoff_seq"`
	StreamSeq       int64           `json:"stream_seq"`
	CoveredPosition int64           `json:"position"`
	LastEventAt     *time.Time      `json:"last_event_at"`
	Applied         int64           `json:"applied_events"`
	Pending         *int64          `json:"pending_events"`
	Verification    json.RawMessage `json:"last_verification"`
	Error           *string         `json:"error"`
	RolledBack      bool            `json:"rolled_back"`
	CreatedAt       time.Time       `json:"created_at"`
	StateAt         time.Time       `json:"state_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	// Lag is how far behind it is (computed when the status is read).
	Lag Lag `json:"lag"`
}

const versionColumns = `name, version, state, tables, stream, build_target, lake_position, handoff_seq, stream_seq,
	covered_position, last_event_at, applied, pending, verification, error, rolled_back, created_at, state_at, updated_at`

func scanVersion(row pgx.Row) (Version, error) {
	var v Version
	err := row.Scan(&v.Name, &v.Version, &v.State, &v.Tables, &v.Stream, &v.BuildTarget, &v.LakePosition, &v.HandoffSeq,
		&v.StreamSeq, &v.CoveredPosition, &v.LastEventAt, &v.Applied, &v.Pending, &v.Verification, &v.Error,
		&v.RolledBack, &v.CreatedAt, &v.StateAt, &v.UpdatedAt)
	return v, err
}

// errNoVersion: the version has no row (never built, or dropped to be
// built again).
var errNoVersion = errors.New("projection: no such version")

func loadVersion(ctx context.Context, db dbtx, name string, version int) (Version, error) {
	v, err := scanVersion(db.QueryRow(ctx, `SELECT `+versionColumns+` FROM projection.versions WHERE name = $1 AND version = $2`, name, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return v, errNoVersion
	}
	if err != nil {
		return v, fmt.Errorf("projection %s v%d: read its state: %w", name, version, err)
	}
	return v, nil
}

func listVersions(ctx context.Context, db dbtx, name string) ([]Version, error) {
	rows, err := db.Query(ctx, `SELECT `+versionColumns+` FROM projection.versions WHERE name = $1 ORDER BY version DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("projection %s: list versions: %w", name, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Version, error) { return scanVersion(r) })
	if err != nil {
		return nil, fmt.Errorf("projection %s: list versions: %w", name, err)
	}
	return out, nil
}

// pointer is a projection's row in projection.projections.
type pointer struct {
	Live, Previous *int
	SwitchedAt     *time.Time
}

func loadPointer(ctx context.Context, db dbtx, name string) (pointer, error) {
	var p pointer
	err := db.QueryRow(ctx, `SELECT live_version, previous_version, switched_at FROM projection.projections WHERE name = $1`, name).
		Scan(&p.Live, &p.Previous, &p.SwitchedAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("projection %s: read the live version: %w", name, err)
	}
	return p, nil
}

// setStateSQL moves a version to another state, with an optional error.
const setStateSQL = `UPDATE projection.versions SET state = $3, error = $4, state_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE name = $1 AND version = $2`

// switchSQL makes a version the live one, in the transaction that retires
// the version live before and marks the new one live: queries read the
// pointer, so they move over at once and whole. Only a newer version than
// the live one takes over; an older one (an old binary started after a
// newer went live) is kept as retired, for a rollback.
const switchSQL = `
WITH ptr AS (
    INSERT INTO projection.projections AS p (name, live_version, previous_version, switched_at)
    VALUES ($1, $2, NULL, clock_timestamp())
    ON CONFLICT (name) DO UPDATE SET previous_version = p.live_version, live_version = excluded.live_version,
                                     switched_at = excluded.switched_at
    WHERE p.live_version IS NULL OR p.live_version < excluded.live_version
    RETURNING 1
), old AS (
    UPDATE projection.versions SET state = 'retired', state_at = clock_timestamp()
    WHERE name = $1 AND version <> $2 AND state = 'live' AND EXISTS (SELECT 1 FROM ptr)
)
UPDATE projection.versions
SET state = CASE WHEN EXISTS (SELECT 1 FROM ptr) THEN 'live' ELSE 'retired' END,
    error = NULL, state_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE name = $1 AND version = $2`
