package lake

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lake answers queries over the lake: events by position and filters, one
// entity's audit trail and state as of a time, an event's lineage.
type Lake struct {
	pool  *pgxpool.Pool
	folds *Folds
	log   *slog.Logger
}

// New returns the lake over pool, folding entities with folds (nil: none);
// log gets what cannot be told to a client any more (a stream cut short).
func New(pool *pgxpool.Pool, folds *Folds, log *slog.Logger) *Lake {
	if folds == nil {
		folds = &Folds{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lake{pool: pool, folds: folds, log: log.With("component", "lake")}
}

// Filter selects events. Zero fields select everything.
type Filter struct {
	After         int64 // positions after this one
	Type          string
	Subject       string
	CorrelationID string
	From, To      time.Time // From <= time < To
	Limit         int       // at most this many; 0: no limit
}

// itemColumns are what scanItem reads, in order.
const itemColumns = `position, stream, stream_seq, id::text, source, type, subject, time,
	correlation_id, coalesce(causation_id, ''), coalesce(traceparent, ''), visibility, data`

func scanItem(row pgx.Row) (Item, error) {
	var it Item
	e := &it.Event
	err := row.Scan(&it.Position, &it.Stream, &it.StreamSeq, &e.ID, &e.Source, &e.Type, &e.Subject, &e.Time,
		&e.CorrelationID, &e.CausationID, &e.TraceParent, &e.Visibility, &e.Data)
	e.SpecVersion, e.DataContentType, e.Time = "1.0", "application/json", e.Time.UTC()
	return it, err
}

// pageSize is how many rows one query of a stream of events reads.
const pageSize = 2000

// Events calls each for the events f selects, oldest first, reading them in
// pages so that a backfill of the whole lake holds no transaction open. It
// stops at the head the lake had when it began, so it ends even while
// events keep arriving. Errors: each's, or the database's.
func (l *Lake) Events(ctx context.Context, f Filter, each func(Item) error) error {
	var head int64
	if err := l.pool.QueryRow(ctx, `SELECT position FROM lake.head`).Scan(&head); err != nil {
		return fmt.Errorf("lake: read head: %w", err)
	}
	where, args := f.where()
	after, left := f.After, f.Limit
	for after < head {
		n := pageSize
		if f.Limit > 0 {
			if left <= 0 {
				return nil
			}
			n = min(n, left)
		}
		q := `SELECT ` + itemColumns + ` FROM lake.events WHERE position > $1 AND position <= $2` + where +
			` ORDER BY position LIMIT ` + strconv.Itoa(n)
		rows, err := l.pool.Query(ctx, q, append([]any{after, head}, args...)...)
		if err != nil {
			return fmt.Errorf("lake: read events: %w", err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scanItem(r) })
		if err != nil {
			return fmt.Errorf("lake: read events: %w", err)
		}
		if err := l.openItems(ctx, items); err != nil {
			return err
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return err
			}
		}
		if len(items) < n {
			return nil
		}
		after, left = items[len(items)-1].Position, left-len(items)
	}
	return nil
}

// where renders the filter's conditions after "position > $1 AND position
// <= $2", with their arguments: only those set, so that each query gets a
// plan for its own index.
func (f Filter) where() (string, []any) {
	var b strings.Builder
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND "+cond, len(args)+2)
	}
	if f.Type != "" {
		add("type = $%d", f.Type)
	}
	if f.Subject != "" {
		add("subject = $%d", f.Subject)
	}
	if f.CorrelationID != "" {
		add("correlation_id = $%d", f.CorrelationID)
	}
	if !f.From.IsZero() {
		add("time >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("time < $%d", f.To)
	}
	return b.String(), args
}

// SubjectEvents calls each for every event with this key (CloudEvents
// subject) whose time is at or before asOf, oldest first: the entity's
// audit trail across all modules.
func (l *Lake) SubjectEvents(ctx context.Context, key string, asOf time.Time, each func(Item) error) error {
	rows, err := l.pool.Query(ctx, `SELECT `+itemColumns+` FROM lake.events
		WHERE subject = $1 AND time <= $2 ORDER BY position`, key, asOf)
	if err != nil {
		return fmt.Errorf("lake: read subject: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scanItem(r) })
	if err != nil {
		return fmt.Errorf("lake: read subject: %w", err)
	}
	if err := l.openItems(ctx, items); err != nil {
		return err
	}
	for _, it := range items {
		if err := each(it); err != nil {
			return err
		}
	}
	return nil
}
