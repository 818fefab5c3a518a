package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/outbox"
)

// The kinds of history rows.
const (
	kindStart      = "start"      // the instance was created
	kindTransition = "transition" // a step moved it to another state
	kindNoted      = "noted"      // a step handled something and stayed
	kindStale      = "stale"      // an event or timer that no longer applied
	kindStuck      = "stuck"      // a step gave up
	kindRetry      = "retry"      // an operator retried it
	kindCancel     = "cancel"     // an operator stopped it
)

// Causes of steps that no event caused.
const (
	causeRetry  = "admin:retry"
	causeCancel = "admin:cancel"
)

// cause is what a step reacts to: an event (its type, id and causation
// id), a timer ("timer:<name>", due at due) or an operator.
type cause struct {
	Type      string
	ID        string
	Causation string
	due       time.Time
}

// Step is one step of an instance, inside its transaction. The handler
// reads and changes Data, writes the module's own tables through Tx, and
// says what else the step does; the runtime records it all when the
// handler returns nil, in the same transaction.
type Step[D any] struct {
	// Data is the instance's data; changes are saved with the step.
	Data D

	def     *Definition[D]
	tx      pgx.Tx
	id      string
	from    string // the state before the step
	state   string
	version int64
	status  Status
	cause   cause
	kind    string
	sends   []outbox.Event
	writes  []queued
	timers  map[string]*time.Duration // nil value: cancel
	stuck   string
	note    string
	errs    []error
}

// load makes the step of a locked instance.
func (def *Definition[D]) load(tx pgx.Tx, inst instance, c cause) (*Step[D], error) {
	s := &Step[D]{def: def, tx: tx, id: inst.id, from: inst.state, state: inst.state, version: inst.version,
		status: inst.status, cause: c, timers: map[string]*time.Duration{}}
	if err := json.Unmarshal(inst.data, &s.Data); err != nil {
		return nil, outbox.Permanent(fmt.Errorf("saga %s %s: decode its data as %T: %w", inst.typ, inst.id, s.Data, err))
	}
	return s, nil
}

// ID is the instance's id.
func (s *Step[D]) ID() string { return s.id }

// State is the instance's state (after Goto, the new one).
func (s *Step[D]) State() string { return s.state }

// Tx is the step's transaction, for the module's own writes.
func (s *Step[D]) Tx() pgx.Tx { return s.tx }

// Goto moves the instance to state when the step commits; another state
// than the current one raises its version, so its earlier timers go stale.
func (s *Step[D]) Goto(state string) {
	if !s.def.knows(state) {
		s.errs = append(s.errs, fmt.Errorf("saga %s: goto %q, which is not among its states", s.def.spec.Type, state))
		return
	}
	s.state = state
	s.stuck = ""
}

// queued is a statement Exec queued for the commit.
type queued struct {
	sql  string
	args []any
}

// Exec queues a write of the module's own tables that needs no answer
// (its error fails the step): it is sent with the step's own records, in
// the same round trip, before them. Use Tx for a write whose result the
// handler needs.
func (s *Step[D]) Exec(sql string, args ...any) { s.writes = append(s.writes, queued{sql, args}) }

// Send appends events (and commands, which are events declared by the
// module that carries them out) to the outbox with the step.
func (s *Step[D]) Send(events ...outbox.Event) { s.sends = append(s.sends, events...) }

// SetTimer sets timer name to fire after d, at the version the step leaves
// the instance at; setting it again replaces it.
func (s *Step[D]) SetTimer(name string, d time.Duration) { s.timers[name] = &d }

// CancelTimer removes timer name, if set.
func (s *Step[D]) CancelTimer(name string) { s.timers[name] = nil }

// Stuck declares the instance stuck: visible to operators, retryable.
func (s *Step[D]) Stuck(why string) { s.stuck = why }

// Note adds a line of explanation to the step's history row.
func (s *Step[D]) Note(text string) {
	if s.note != "" {
		s.note += "; "
	}
	s.note += text
}

// sentEvent is one entry of a history row's sent list.
type sentEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// commit records the step: the instance, one history row, the timers and
// the events, in one round trip on the step's transaction.
func (s *Step[D]) commit(ctx context.Context) error {
	if len(s.errs) > 0 {
		return errors.Join(s.errs...)
	}
	data, err := json.Marshal(s.Data)
	if err != nil {
		return fmt.Errorf("saga %s %s: encode data: %w", s.def.spec.Type, s.id, err)
	}
	moved := s.state != s.from
	version := s.version
	switch {
	case s.kind == kindStart:
		version = 1
	case moved:
		version++
	}
	status := s.status
	switch {
	case s.stuck != "":
		status = Stuck
		s.Note(s.stuck)
	case moved || s.kind == kindStart || s.kind == kindRetry:
		status = Running
		if s.def.final(s.state) {
			status = Completed
		}
	}
	kind := s.kind
	switch {
	case kind != "":
	case s.stuck != "":
		kind = kindStuck
	case moved:
		kind = kindTransition
	default:
		kind = kindNoted
	}

	b := &pgx.Batch{}
	for _, w := range s.writes {
		b.Queue(w.sql, w.args...)
	}
	appended, err := outbox.Queue(ctx, b, s.sends...)
	if err != nil {
		return fmt.Errorf("saga %s %s: %w", s.def.spec.Type, s.id, err)
	}
	sent := make([]sentEvent, len(appended))
	for i, a := range appended {
		sent[i] = sentEvent{Type: s.sends[i].Type, ID: a.ID}
	}
	sentJSON, err := json.Marshal(sent)
	if err != nil {
		return err
	}
	typ := s.def.spec.Type
	if s.kind == kindStart {
		b.Queue(insertInstanceSQL, typ, s.id, s.state, status, version, data)
	} else {
		b.Queue(updateInstanceSQL, typ, s.id, s.state, status, version, data)
	}
	queueHistory(b, typ, s.id, kind, s.from, s.state, version, s.cause, sentJSON, s.note)
	for name, d := range s.timers {
		if d == nil {
			b.Queue(deleteTimerSQL, typ, s.id, name)
			continue
		}
		b.Queue(setTimerSQL, typ, s.id, name, version, d.Seconds())
	}
	err = s.tx.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "instances_pkey" {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("saga %s %s: record step: %w", typ, s.id, err)
	}
	return nil
}

// recordStale records an event or timer that no longer applies, and
// nothing else.
func (s *Step[D]) recordStale(ctx context.Context, why string) error {
	b := &pgx.Batch{}
	queueHistory(b, s.def.spec.Type, s.id, kindStale, s.from, s.from, s.version, s.cause, []byte("[]"), why)
	if err := s.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("saga %s %s: record stale step: %w", s.def.spec.Type, s.id, err)
	}
	return nil
}

func queueHistory(b *pgx.Batch, typ, id, kind, from, to string, version int64, c cause, sent []byte, note string) {
	var due *time.Time
	if !c.due.IsZero() {
		due = &c.due
	}
	b.Queue(insertHistorySQL, typ, id, kind, from, to, version, c.Type, c.ID, c.Causation, due, sent, note)
}
