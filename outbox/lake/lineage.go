package lake

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrNoEvent is returned by Lineage for an id the lake does not hold.
var ErrNoEvent = errors.New("lake: no event with this id")

// Lineage is an event with what led to it and what followed from it.
type Lineage struct {
	Event Item `json:"event"`
	// Causes are the events that caused it, from its direct cause up to
	// the root cause (the first whose cause is a request, not an event).
	Causes []Item `json:"causes"`
	// Effects are every event it caused, directly or not, by position;
	// each carries its causation id.
	Effects []Item `json:"effects"`
	// Correlated are every event with its correlation id, by position.
	Correlated []Item `json:"correlated"`
	// Truncated is set when a list was cut at MaxLineage.
	Truncated bool `json:"truncated,omitempty"`
}

// MaxLineage bounds each list of a lineage.
const MaxLineage = 1000

// maxCauseDepth bounds the walk up the causes.
const maxCauseDepth = 100

// byIDSQL finds an event by id through lake.ids, which names its
// partition.
const byIDSQL = `SELECT ` + itemColumns + ` FROM lake.events e
	WHERE (e.position, e.recorded_at) = (SELECT i.position, i.recorded_at FROM lake.ids i WHERE i.id = $1)`

// uuidShape is the condition of the partial causation index: only ids
// shaped like an event id are indexed (migrations/00012_lake.sql).
const uuidShape = `________-____-____-____-____________`

// effectsSQL walks the causation index down from an event; it repeats the
// index's condition so that the planner uses it.
const effectsSQL = `
WITH RECURSIVE effects(position, recorded_at, id, depth) AS (
    SELECT position, recorded_at, id, 1 FROM lake.events WHERE causation_id = $1 AND causation_id LIKE '` + uuidShape + `'
    UNION ALL
    SELECT e.position, e.recorded_at, e.id, f.depth + 1
    FROM effects f JOIN lake.events e ON e.causation_id = f.id::text AND e.causation_id LIKE '` + uuidShape + `'
    WHERE f.depth < 1000
)
SELECT ` + itemColumns + ` FROM lake.events
WHERE (position, recorded_at) IN (SELECT position, recorded_at FROM effects)
ORDER BY position LIMIT $2`

const correlatedSQL = `SELECT ` + itemColumns + ` FROM lake.events
	WHERE correlation_id = $1 ORDER BY position LIMIT $2`

// Lineage returns the event with this id, its causes, its effects and the
// events correlated with it. Errors: ErrNoEvent, or the database's.
func (l *Lake) Lineage(ctx context.Context, id string) (Lineage, error) {
	var out Lineage
	ev, err := l.byID(ctx, id)
	if err != nil {
		return out, err
	}
	out.Event = ev
	out.Causes = []Item{}
	for cause := ev.Event.CausationID; len(out.Causes) < maxCauseDepth; {
		if _, perr := uuid.Parse(cause); perr != nil {
			break // a request id: the root is reached
		}
		c, err := l.byID(ctx, cause)
		if errors.Is(err, ErrNoEvent) {
			break
		}
		if err != nil {
			return out, err
		}
		out.Causes = append(out.Causes, c)
		cause = c.Event.CausationID
	}
	if out.Effects, err = l.list(ctx, effectsSQL, ev.Event.ID); err != nil {
		return out, err
	}
	if out.Correlated, err = l.list(ctx, correlatedSQL, ev.Event.CorrelationID); err != nil {
		return out, err
	}
	out.Truncated = len(out.Effects) > MaxLineage || len(out.Correlated) > MaxLineage
	out.Effects, out.Correlated = out.Effects[:min(len(out.Effects), MaxLineage)], out.Correlated[:min(len(out.Correlated), MaxLineage)]
	return out, nil
}

func (l *Lake) byID(ctx context.Context, id string) (Item, error) {
	it, err := scanItem(l.pool.QueryRow(ctx, byIDSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return it, ErrNoEvent
	}
	if err != nil {
		return it, fmt.Errorf("lake: read event %s: %w", id, err)
	}
	one := []Item{it}
	err = l.openItems(ctx, one)
	return one[0], err
}

// list reads up to MaxLineage+1 items, so that a cut list can be told.
func (l *Lake) list(ctx context.Context, sql, arg string) ([]Item, error) {
	rows, err := l.pool.Query(ctx, sql, arg, MaxLineage+1)
	if err != nil {
		return nil, fmt.Errorf("lake: lineage: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) { return scanItem(r) })
	if err != nil {
		return nil, fmt.Errorf("lake: lineage: %w", err)
	}
	if items == nil {
		items = []Item{}
	}
	return items, l.openItems(ctx, items)
}
