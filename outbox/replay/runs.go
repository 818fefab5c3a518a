package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Mode is what a run does.
type Mode string

// The modes.
const (
	ModeRebuild Mode = "rebuild"
	ModeDryRun  Mode = "dry_run"
	// ModeSeed is a new consumer that starts in the past being seeded
	// from the lake; the consumer runtime starts it, nobody asks for it.
	ModeSeed Mode = "seed"
)

// The statuses of a run.
const (
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Run is a replay as replay.runs records it: what GET
// /api/v1/admin/replays/:id answers.
type Run struct {
	ID       string `json:"id"`
	Consumer string `json:"consumer"`
	Mode     Mode   `json:"mode"`
	Status   string `json:"status"`
	// From and To are the range as asked: a position or an RFC 3339 time;
	// "" for the start or the end of history.
	From      string `json:"from"`
	To        string `json:"to"`
	Processed int64  `json:"processed"`
	// Position is the last position of the lake read.
	Position int64 `json:"position"`
	// Effects a dry run recorded instead of making them.
	Effects int64 `json:"effects"`
	// Failed events: parked as dead letters by a rebuild, recorded as
	// handler_failed by a dry run.
	Failed int64  `json:"failed"`
	Error  string `json:"error,omitempty"`
	// Attempts counts the starts: a takeover of the consumer starts an
	// unfinished run again.
	Attempts   int         `json:"attempts"`
	Handoff    *HandoffRow `json:"handoff,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	FinishedAt *time.Time  `json:"finished_at,omitempty"`

	rng Range
}

// HandoffRow is where a rebuild or a seeding handed over to live
// consumption.
type HandoffRow struct {
	Stream   string `json:"stream"`
	LastSeq  uint64 `json:"last_seq"`
	StartSeq uint64 `json:"start_seq"`
}

// Range is the run's range of the lake.
func (r Run) Range() Range { return r.rng }

// ErrRunning: a run of that consumer is running already.
var ErrRunning = errors.New("replay: a replay of this consumer is running")

const runColumns = `id::text, consumer, mode, status, from_spec, to_spec, coalesce(from_position, 0), coalesce(to_position, 0),
	from_time, to_time, processed, position, effects, failed, coalesce(error, ''), attempts, handoff, created_at, finished_at`

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	var from, to *time.Time
	err := row.Scan(&r.ID, &r.Consumer, &r.Mode, &r.Status, &r.From, &r.To, &r.rng.FromPosition, &r.rng.ToPosition,
		&from, &to, &r.Processed, &r.Position, &r.Effects, &r.Failed, &r.Error, &r.Attempts, &r.Handoff, &r.CreatedAt, &r.FinishedAt)
	if from != nil {
		r.rng.FromTime = from.UTC()
	}
	if to != nil {
		r.rng.ToTime = to.UTC()
	}
	return r, err
}

// Create records a running run. Errors: ErrRunning, the database's.
func Create(ctx context.Context, db *pgxpool.Pool, consumer string, mode Mode, rng Range, fromSpec, toSpec string) (Run, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Run{}, err
	}
	var fp, tp, ft, tt any
	if rng.FromPosition > 0 {
		fp = rng.FromPosition
	}
	if rng.ToPosition > 0 {
		tp = rng.ToPosition
	}
	if !rng.FromTime.IsZero() {
		ft = rng.FromTime
	}
	if !rng.ToTime.IsZero() {
		tt = rng.ToTime
	}
	run, err := scanRun(db.QueryRow(ctx, `INSERT INTO replay.runs (id, consumer, mode, status, from_spec, to_spec, from_position, to_position, from_time, to_time)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9) RETURNING `+runColumns,
		id, consumer, mode, fromSpec, toSpec, fp, tp, ft, tt))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return Run{}, ErrRunning
	}
	if err != nil {
		return Run{}, fmt.Errorf("replay: record run: %w", err)
	}
	return run, nil
}

// ErrNoRun: no run has that id.
var ErrNoRun = errors.New("replay: no such run")

// Get returns a run. Errors: ErrNoRun, the database's.
func Get(ctx context.Context, db *pgxpool.Pool, id string) (Run, error) {
	r, err := scanRun(db.QueryRow(ctx, `SELECT `+runColumns+` FROM replay.runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNoRun
	}
	if err != nil {
		return r, fmt.Errorf("replay: read run %s: %w", id, err)
	}
	return r, nil
}

// List returns up to limit runs, the most recently requested first (ids
// are UUIDv7, in the order requested, for runs of one instant).
func List(ctx context.Context, db *pgxpool.Pool, limit int) ([]Run, error) {
	rows, err := db.Query(ctx, `SELECT `+runColumns+` FROM replay.runs ORDER BY created_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("replay: list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("replay: list runs: %w", err)
	}
	return runs, nil
}

// Running returns each consumer's running run: id and mode.
func Running(ctx context.Context, db *pgxpool.Pool) (map[string]Run, error) {
	rows, err := db.Query(ctx, `SELECT `+runColumns+` FROM replay.runs WHERE status = 'running'`)
	if err != nil {
		return nil, fmt.Errorf("replay: running runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
	if err != nil {
		return nil, fmt.Errorf("replay: running runs: %w", err)
	}
	out := map[string]Run{}
	for _, r := range runs {
		out[r.Consumer] = r
	}
	return out, nil
}

// Start counts a start of the run and returns it; ok is false if it is not
// running any more. A dry run started again forgets the effects recorded
// by the start before.
func Start(ctx context.Context, db *pgxpool.Pool, id string) (Run, bool, error) {
	var run Run
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var err error
		run, err = scanRun(tx.QueryRow(ctx, `UPDATE replay.runs SET attempts = attempts + 1, started_at = now(),
			processed = 0, position = 0, effects = 0, failed = 0
			WHERE id = $1 AND status = 'running' RETURNING `+runColumns, id))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM replay.effects WHERE run_id = $1`, id)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return run, false, nil
	}
	if err != nil {
		return run, false, fmt.Errorf("replay: start run %s: %w", id, err)
	}
	return run, true, nil
}

// SaveProgress records how far a run got.
func SaveProgress(ctx context.Context, db *pgxpool.Pool, id string, p Progress) error {
	_, err := db.Exec(ctx, `UPDATE replay.runs SET processed = $2, position = $3, effects = $4, failed = $5 WHERE id = $1 AND status = 'running'`,
		id, p.Processed, p.Position, p.Effects, p.Failed)
	if err != nil {
		return fmt.Errorf("replay: record progress of %s: %w", id, err)
	}
	return nil
}

// Finish ends a run as done or failed (with why).
func Finish(ctx context.Context, db *pgxpool.Pool, id, status string, p Progress, why string, ho *Handoff) error {
	var handoff any
	if ho != nil {
		handoff = HandoffRow{Stream: ho.Stream, LastSeq: ho.LastSeq, StartSeq: ho.StartSeq}
	}
	var e any
	if why != "" {
		e = why
	}
	_, err := db.Exec(ctx, `UPDATE replay.runs SET status = $2, processed = $3, position = $4, effects = $5, failed = $6,
		error = $7, handoff = $8, finished_at = now() WHERE id = $1 AND status = 'running'`,
		id, status, p.Processed, p.Position, p.Effects, p.Failed, e, handoff)
	if err != nil {
		return fmt.Errorf("replay: finish run %s: %w", id, err)
	}
	return nil
}

// NoteError records the last error of a run that goes on (it is started
// again).
func NoteError(ctx context.Context, db *pgxpool.Pool, id, why string) error {
	_, err := db.Exec(ctx, `UPDATE replay.runs SET error = $2 WHERE id = $1`, id, why)
	return err
}

// BeginSeed returns the running seed of consumer, recording one if there
// is none. Errors: ErrRunning (another run of it), the database's.
func BeginSeed(ctx context.Context, db *pgxpool.Pool, consumer, from string) (Run, error) {
	run, err := scanRun(db.QueryRow(ctx, `SELECT `+runColumns+` FROM replay.runs WHERE consumer = $1 AND status = 'running'`, consumer))
	switch {
	case err == nil && run.Mode == ModeSeed:
		return run, nil
	case err == nil:
		return run, ErrRunning
	case !errors.Is(err, pgx.ErrNoRows):
		return run, fmt.Errorf("replay: read runs of %s: %w", consumer, err)
	}
	return Create(ctx, db, consumer, ModeSeed, Range{}, from, "")
}

// AddEffects records what a dry run would have done, after what it
// recorded already.
func AddEffects(ctx context.Context, db *pgxpool.Pool, id string, effects []Effect) error {
	ids := make([]string, len(effects))
	pos := make([]int64, len(effects))
	names := make([]string, len(effects))
	details := make([]string, len(effects))
	for i, e := range effects {
		ids[i], pos[i], names[i], details[i] = e.EventID, e.Position, e.Effect, string(e.Detail)
	}
	_, err := db.Exec(ctx, `INSERT INTO replay.effects (run_id, seq, event_id, position, effect, detail)
		SELECT $1, (SELECT coalesce(max(seq), 0) FROM replay.effects WHERE run_id = $1) + e.n, e.event_id, e.position, e.effect, e.detail::jsonb
		FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY e(event_id, position, effect, detail, n)`,
		id, ids, pos, names, details)
	if err != nil {
		return fmt.Errorf("replay: record effects of %s: %w", id, err)
	}
	return nil
}

// Effects returns up to limit of what a dry run recorded, in order.
func Effects(ctx context.Context, db *pgxpool.Pool, id string, limit int) ([]Effect, error) {
	rows, err := db.Query(ctx, `SELECT event_id::text, position, effect, detail FROM replay.effects WHERE run_id = $1 ORDER BY seq LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("replay: read effects of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Effect, error) {
		var e Effect
		var detail []byte
		err := r.Scan(&e.EventID, &e.Position, &e.Effect, &detail)
		e.Detail = json.RawMessage(detail)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("replay: read effects of %s: %w", id, err)
	}
	return out, nil
}
