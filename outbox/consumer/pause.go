package consumer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/errs"
)

// ErrConsumerNotFound: no consumer of that name runs in this build.
var ErrConsumerNotFound = errs.New(errs.NotFound, "not_found", "no such consumer")

// operatorPause is an operator's pause of a consumer, as last read from
// inbox.paused_consumers (or set by this replica).
type operatorPause struct {
	on     bool
	reason string
}

// Pause stops a consumer from handling events, on every replica, until
// Resume: the holder fetches nothing more, and the events it fetched
// already wait (kept in progress, in order) before their handler. An event
// being handled finishes. The holder here stops at once; one on another
// replica within about a second (it reads the pauses every second). The
// pause survives restarts; a paused consumer counts as consumed for
// readiness. Errors: ErrConsumerNotFound, or the database's.
func (r *Runtime) Pause(ctx context.Context, consumer, reason string) error {
	st, ok := r.states[consumer]
	if !ok {
		return ErrConsumerNotFound
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "no reason given"
	}
	if _, err := r.pool.Exec(ctx, `INSERT INTO inbox.paused_consumers (consumer, reason) VALUES ($1, $2)
		ON CONFLICT (consumer) DO UPDATE SET reason = EXCLUDED.reason, paused_at = now()`, consumer, reason); err != nil {
		return fmt.Errorf("consumer: pause %s: %w", consumer, err)
	}
	st.setHeld(operatorPause{on: true, reason: reason})
	r.log.Info("consumer paused by an operator", "consumer", consumer, "reason", reason)
	return nil
}

// Resume undoes Pause. Resuming a consumer that is not paused does
// nothing. Errors: ErrConsumerNotFound, or the database's.
func (r *Runtime) Resume(ctx context.Context, consumer string) error {
	st, ok := r.states[consumer]
	if !ok {
		return ErrConsumerNotFound
	}
	if _, err := r.pool.Exec(ctx, `DELETE FROM inbox.paused_consumers WHERE consumer = $1`, consumer); err != nil {
		return fmt.Errorf("consumer: resume %s: %w", consumer, err)
	}
	st.setHeld(operatorPause{})
	r.log.Info("consumer resumed by an operator", "consumer", consumer)
	return nil
}

// readPauses reads every pause, so that the holder of a consumer paused on
// another replica stops too.
func (r *Runtime) readPauses(ctx context.Context) error {
	rows, err := r.opt.LeasePool.Query(ctx, `SELECT consumer, reason FROM inbox.paused_consumers`)
	if err != nil {
		return err
	}
	paused := map[string]string{}
	var c, reason string
	if _, err := pgx.ForEachRow(rows, []any{&c, &reason}, func() error { paused[c] = reason; return nil }); err != nil {
		return err
	}
	for name, st := range r.states {
		reason, on := paused[name]
		st.setHeld(operatorPause{on: on, reason: reason})
	}
	return nil
}

func (st *state) setHeld(p operatorPause) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.held = p
}

// heldByOperator reports whether an operator paused the consumer.
func (st *state) heldByOperator() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.held.on
}

// waitWhileHeld blocks while an operator pauses the consumer; false when
// ctx ends first.
func (st *state) waitWhileHeld(ctx context.Context) bool {
	for st.heldByOperator() {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return false
		}
	}
	return true
}
