package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// ErrNoState is returned by State for a key with no event a fold reads at
// or before the time asked.
var ErrNoState = errors.New("lake: no event of this key is folded by any module before that time")

// State is an entity as it was at some moment, folded from its events.
type State struct {
	Key       string          `json:"key"`
	Aggregate string          `json:"type"`
	AsOf      time.Time       `json:"as_of"`
	Position  int64           `json:"position"` // of the last event folded
	State     json.RawMessage `json:"state"`
}

// stateSQL reads what the folds need of one key's events up to a time: its
// index is (subject, position).
const stateSQL = `SELECT position, id::text, type, time, data FROM lake.events
	WHERE subject = $1 AND time <= $2 AND type = ANY($3) ORDER BY position`

// stateRow is one event a fold reads.
type stateRow struct {
	Event
	data json.RawMessage
}

// ErrNoFold is returned by State for an aggregate no module registered.
var ErrNoFold = errors.New("lake: no module folds this aggregate")

// State folds the events of key whose time is at or before asOf. With
// aggregate empty, the fold is the one that reads the key's first such
// event; otherwise it is that aggregate's, reading only its own events:
// several aggregates may share a key (an order, its stock reservation and
// its payment all carry the order's id). Errors: ErrNoFold, ErrNoState, a
// step that cannot decode an event, or the database's.
func (l *Lake) State(ctx context.Context, key, aggregate string, asOf time.Time) (State, error) {
	st := State{Key: key, AsOf: asOf.UTC()}
	types := l.folds.types()
	if aggregate != "" {
		if types = l.folds.typesOf(aggregate); types == nil {
			return st, ErrNoFold
		}
	}
	if len(types) == 0 {
		return st, ErrNoState
	}
	rows, err := l.pool.Query(ctx, stateSQL, key, asOf, types)
	if err != nil {
		return st, fmt.Errorf("lake: read %s: %w", key, err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (stateRow, error) {
		var e stateRow
		err := r.Scan(&e.Position, &e.ID, &e.Type, &e.Time, &e.data)
		return e, err
	})
	if err != nil {
		return st, fmt.Errorf("lake: read %s: %w", key, err)
	}
	// Personal fields are opened while their person's key exists.
	err = OpenEvents(ctx, l.pool, len(evs), func(i int) (string, string, string, *json.RawMessage) {
		return evs[i].Type, evs[i].ID, key, &evs[i].data
	})
	if err != nil {
		return st, err
	}
	var fd *fold
	var state any
	for _, e := range evs {
		f, reads := l.folds.ofType(e.Type)
		if fd == nil {
			fd = f
			state = fd.newState()
			st.Aggregate = fd.name
		}
		step, ok := fd.steps[reads]
		if f != fd || !ok {
			continue
		}
		// An older version is folded as the newer one its step reads.
		data, err := outbox.UpcastData(e.Type, reads, e.data)
		if err != nil {
			return st, fmt.Errorf("lake: fold %s: %w", e.ID, err)
		}
		e.Time, e.Type = e.Time.UTC(), reads
		if err := step(state, e.Event, data); err != nil {
			return st, err
		}
		st.Position = e.Position
	}
	if fd == nil {
		return st, ErrNoState
	}
	if st.State, err = json.Marshal(state); err != nil {
		return st, fmt.Errorf("lake: encode the state of %s: %w", key, err)
	}
	return st, nil
}
