package saga

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
)

// Summary is an instance as a listing shows it.
type Summary struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	State     string    `json:"state"`
	Status    Status    `json:"status"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// View is an instance whole: its data, its full history and its timers.
type View struct {
	Summary
	Data    json.RawMessage `json:"data"`
	History []Entry         `json:"history"`
	Timers  []TimerView     `json:"timers"`
}

// Entry is one history row. Topology says how its cause came about:
// "orchestration" for a reply to a command the saga sent (an event whose
// causation is a command, declared by another module, that an earlier step
// sent), "choreography" for a participant's own reaction to an event the
// saga's module published; empty for timers, operators and the start.
type Entry struct {
	Seq      int64       `json:"seq"`
	At       time.Time   `json:"at"`
	Kind     string      `json:"kind"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Version  int64       `json:"version"`
	Cause    CauseView   `json:"cause"`
	Topology string      `json:"topology,omitempty"`
	DueAt    *time.Time  `json:"due_at,omitempty"`
	Sent     []sentEvent `json:"sent"`
	Note     string      `json:"note,omitempty"`
}

// CauseView is what a step reacted to.
type CauseView struct {
	Type        string `json:"type"`
	ID          string `json:"id,omitempty"`
	CausationID string `json:"causation_id,omitempty"`
}

// TimerView is a pending timer; a stale one was set at an earlier version
// and will do nothing when it fires.
type TimerView struct {
	Name    string    `json:"name"`
	FireAt  time.Time `json:"fire_at"`
	Version int64     `json:"version"`
	Stale   bool      `json:"stale"`
}

// List returns instances, newest first, optionally of one type and one
// status.
func List(ctx context.Context, db *pgxpool.Pool, typ string, status Status, limit int) ([]Summary, error) {
	rows, err := db.Query(ctx, `SELECT `+instanceColumns+` FROM saga.instances
		WHERE ($1 = '' OR saga_type = $1) AND ($2 = '' OR status = $2)
		ORDER BY updated_at DESC, id LIMIT $3`, typ, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("saga: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Summary, error) {
		in, err := scanInstance(row)
		return in.summary(), err
	})
	if err != nil {
		return nil, fmt.Errorf("saga: list: %w", err)
	}
	return out, nil
}

func (in instance) summary() Summary {
	return Summary{Type: in.typ, ID: in.id, State: in.state, Status: in.status, Version: in.version,
		CreatedAt: in.createdAt.UTC(), UpdatedAt: in.updatedAt.UTC()}
}

// Get returns one instance whole. Errors: ErrNotFound.
func Get(ctx context.Context, db *pgxpool.Pool, typ, id string) (View, error) {
	in, err := scanInstance(db.QueryRow(ctx, `SELECT `+instanceColumns+` FROM saga.instances WHERE saga_type = $1 AND id = $2`, typ, id))
	if err != nil {
		if err == ErrNotFound {
			return View{}, err
		}
		return View{}, fmt.Errorf("saga: get: %w", err)
	}
	v := View{Summary: in.summary(), Data: in.data}
	if v.History, err = history(ctx, db, typ, id); err != nil {
		return View{}, err
	}
	rows, err := db.Query(ctx, `SELECT name, fire_at, version FROM saga.timers WHERE saga_type = $1 AND id = $2 ORDER BY fire_at`, typ, id)
	if err != nil {
		return View{}, fmt.Errorf("saga: timers: %w", err)
	}
	v.Timers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (TimerView, error) {
		var t TimerView
		err := row.Scan(&t.Name, &t.FireAt, &t.Version)
		t.FireAt, t.Stale = t.FireAt.UTC(), t.Version != in.version
		return t, err
	})
	if err != nil {
		return View{}, fmt.Errorf("saga: timers: %w", err)
	}
	return v, nil
}

func history(ctx context.Context, db *pgxpool.Pool, typ, id string) ([]Entry, error) {
	rows, err := db.Query(ctx, `SELECT seq, at, kind, from_state, to_state, version, cause_type, cause_id, causation_id, due_at, sent, note
		FROM saga.history WHERE saga_type = $1 AND id = $2 ORDER BY seq`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("saga: history: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		var sent []byte
		err := row.Scan(&e.Seq, &e.At, &e.Kind, &e.From, &e.To, &e.Version, &e.Cause.Type, &e.Cause.ID, &e.Cause.CausationID, &e.DueAt, &sent, &e.Note)
		if err == nil {
			err = json.Unmarshal(sent, &e.Sent)
		}
		e.At = e.At.UTC()
		if e.DueAt != nil {
			d := e.DueAt.UTC()
			e.DueAt = &d
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("saga: history: %w", err)
	}
	module, _, _ := strings.Cut(typ, "_")
	sentType := map[string]string{}
	for i := range out {
		if t, ok := sentType[out[i].Cause.CausationID]; ok && out[i].Cause.CausationID != "" {
			out[i].Topology = "orchestration"
			if outbox.Module(t) == module {
				out[i].Topology = "choreography"
			}
		}
		for _, s := range out[i].Sent {
			sentType[s.ID] = s.Type
		}
	}
	return out, nil
}
