package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/errs"
)

// The runtime's errors; match with errors.Is.
var (
	ErrNotFound = errs.New(errs.NotFound, "saga_not_found", "no such saga instance")
	ErrExists   = errs.New(errs.Conflict, "saga_exists", "a saga instance with this id exists already")
	ErrNotStuck = errs.New(errs.Conflict, "saga_not_stuck", "only a stuck saga instance can be retried")
	ErrFinal    = errs.New(errs.Conflict, "saga_final", "the saga instance is completed or cancelled already")
	ErrNoRetry  = errs.New(errs.Conflict, "saga_no_retry", "this saga defines no retry")
)

// instance is a row of saga.instances.
type instance struct {
	typ, id   string
	state     string
	status    Status
	version   int64
	data      []byte
	createdAt time.Time
	updatedAt time.Time
}

const instanceColumns = `saga_type, id, state, status, version, data, created_at, updated_at`

func scanInstance(row pgx.Row) (instance, error) {
	var in instance
	err := row.Scan(&in.typ, &in.id, &in.state, &in.status, &in.version, &in.data, &in.createdAt, &in.updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return in, ErrNotFound
	}
	return in, err
}

// lockInstance reads an instance and locks it until tx ends: the steps of
// one instance run one at a time.
func lockInstance(ctx context.Context, tx pgx.Tx, typ, id string) (instance, error) {
	in, err := scanInstance(tx.QueryRow(ctx, `SELECT `+instanceColumns+` FROM saga.instances
		WHERE saga_type = $1 AND id = $2 FOR UPDATE`, typ, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return in, fmt.Errorf("saga %s %s: lock instance: %w", typ, id, err)
	}
	return in, err
}

const insertInstanceSQL = `INSERT INTO saga.instances (saga_type, id, state, status, version, data)
VALUES ($1, $2, $3, $4, $5, $6)`

const updateInstanceSQL = `UPDATE saga.instances SET state = $3, status = $4, version = $5, data = $6, updated_at = clock_timestamp()
WHERE saga_type = $1 AND id = $2`

const insertHistorySQL = `INSERT INTO saga.history
(saga_type, id, kind, from_state, to_state, version, cause_type, cause_id, causation_id, due_at, sent, note)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

const setTimerSQL = `INSERT INTO saga.timers (saga_type, id, name, version, fire_at)
VALUES ($1, $2, $3, $4, clock_timestamp() + make_interval(secs => $5))
ON CONFLICT (saga_type, id, name) DO UPDATE SET version = EXCLUDED.version, fire_at = EXCLUDED.fire_at, attempts = 0`

const deleteTimerSQL = `DELETE FROM saga.timers WHERE saga_type = $1 AND id = $2 AND name = $3`

// timer is a row of saga.timers.
type timer struct {
	typ, id, name string
	version       int64
	fireAt        time.Time
	attempts      int
}
