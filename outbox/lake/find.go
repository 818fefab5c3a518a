package lake

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The fields Find looks events up by.
const (
	ByID          = "id"
	ByKey         = "key" // the CloudEvents subject
	ByCorrelation = "correlation"
	ByCausation   = "causation"
)

// Find returns the events whose field by (ByID, ByKey, ByCorrelation or
// ByCausation) is value, oldest first, at most limit: what the operator
// console looks events up with. Each lookup uses an index; a causation id
// that is not an event id (a request's) finds nothing, since only event
// ids are indexed as causes. Errors: an unknown field, or the database's.
func (l *Lake) Find(ctx context.Context, by, value string, limit int) ([]Item, error) {
	if limit <= 0 {
		limit = 100
	}
	var sql string
	switch by {
	case ByID:
		if _, err := uuid.Parse(value); err != nil {
			return []Item{}, nil
		}
		it, err := l.byID(ctx, value)
		if err == ErrNoEvent {
			return []Item{}, nil
		}
		if err != nil {
			return nil, err
		}
		return []Item{it}, nil
	case ByKey:
		sql = `SELECT ` + itemColumns + ` FROM lake.events WHERE subject = $1 ORDER BY position LIMIT $2`
	case ByCorrelation:
		sql = `SELECT ` + itemColumns + ` FROM lake.events WHERE correlation_id = $1 ORDER BY position LIMIT $2`
	case ByCausation:
		if _, err := uuid.Parse(value); err != nil {
			return []Item{}, nil
		}
		sql = `SELECT ` + itemColumns + ` FROM lake.events WHERE causation_id = $1 AND causation_id LIKE '` + uuidShape +
			`' ORDER BY position LIMIT $2`
	default:
		return nil, fmt.Errorf("lake: cannot find events by %q", by)
	}
	rows, err := l.pool.Query(ctx, sql, value, limit)
	if err != nil {
		return nil, fmt.Errorf("lake: find by %s: %w", by, err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scanItem(r) })
	if err != nil {
		return nil, fmt.Errorf("lake: find by %s: %w", by, err)
	}
	if items == nil {
		items = []Item{}
	}
	return items, nil
}
