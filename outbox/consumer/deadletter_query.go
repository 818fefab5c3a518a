package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetterFilter selects dead letters; zero fields select all.
type DeadLetterFilter struct {
	Consumer  string
	EventType string
	// Error is a substring of the last error, case-insensitive.
	Error string
	// FailedFrom and FailedTo bound when each last failed.
	FailedFrom, FailedTo time.Time
}

func (f DeadLetterFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Consumer != "" {
		add("consumer = ?", f.Consumer)
	}
	if f.EventType != "" {
		add("event_type = ?", f.EventType)
	}
	if f.Error != "" {
		add("strpos(lower(last_error), lower(?)) > 0", f.Error)
	}
	if !f.FailedFrom.IsZero() {
		add("failed_at >= ?", f.FailedFrom)
	}
	if !f.FailedTo.IsZero() {
		add("failed_at <= ?", f.FailedTo)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

const deadLetterColumns = `id::text, consumer, event_id::text, event_type, subject, event_key, attempts, last_error, failed_at, payload`

func scanDeadLetter(row pgx.CollectableRow) (DeadLetter, error) {
	var d DeadLetter
	var payload []byte
	err := row.Scan(&d.ID, &d.Consumer, &d.EventID, &d.EventType, &d.Subject, &d.Key, &d.Attempts, &d.LastError, &d.FailedAt, &payload)
	payload = shownPayload(payload)
	if json.Valid(payload) {
		d.Event = payload
	} else {
		d.Event, _ = json.Marshal(string(payload))
	}
	return d, err
}

// FindDeadLetters lists the dead letters f selects, oldest failure first,
// at most limit, and how many f selects in all. Errors: the database's.
func (r *Runtime) FindDeadLetters(ctx context.Context, f DeadLetterFilter, limit int) ([]DeadLetter, int64, error) {
	where, args := f.where()
	var total int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.dead_letters`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("consumer: count dead letters: %w", err)
	}
	rows, err := r.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM inbox.dead_letters`+where+
		fmt.Sprintf(` ORDER BY failed_at, id LIMIT $%d`, len(args)+1), append(args, limit)...)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanDeadLetter)
	if err != nil {
		return nil, 0, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	return out, total, nil
}

// DeadLetter returns one dead letter. Errors: ErrDeadLetterNotFound, or
// the database's.
func (r *Runtime) DeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	if !validUUID(id) {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	rows, err := r.pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM inbox.dead_letters WHERE id = $1`, id)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("consumer: read dead letter: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeadLetter)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("consumer: read dead letter: %w", err)
	}
	return d, nil
}

// DeadLetterIDs returns the ids of every dead letter f selects, at most
// limit: what a bulk action is confirmed on.
func (r *Runtime) DeadLetterIDs(ctx context.Context, f DeadLetterFilter, limit int) ([]string, error) {
	where, args := f.where()
	rows, err := r.pool.Query(ctx, `SELECT id::text FROM inbox.dead_letters`+where+
		fmt.Sprintf(` ORDER BY failed_at, id LIMIT $%d`, len(args)+1), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	return ids, nil
}
