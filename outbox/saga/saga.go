// Package saga runs sagas: long-running business transactions across
// modules, driven by the events the modules publish, whose every step is
// one PostgreSQL transaction.
//
// A module declares a saga (Define) with its states, the events it reacts
// to in each state (On), its timers (OnTimer) and what an operator's retry
// does (OnRetry), and registers it with one line on modules.Deps:
//
//	err := d.Sagas.Register(fulfilment)
//
// An instance is started inside the transaction of the use case that
// begins it (Definition.Start), so it exists exactly when that use case
// committed. Every later step runs as an ordinary consumer handler (each
// event an instance reacts to has a durable consumer of its own, named
// <saga type>_<handler>), or for a timer, in the timer poller's
// transaction. In that one transaction the step loads and locks the
// instance, runs the module's handler (which may write the module's own
// tables through Step.Tx), records the transition in the append-only
// history, writes its timers, appends its commands and events to the
// outbox and, for an event, records it in the inbox. A crash anywhere
// repeats the step, never half of it.
//
// Staleness. Each transition to another state raises the instance's
// version; a timer carries the version it was set at, and one that fires
// at another version is recorded as stale and does nothing. An event that
// arrives in a state with no handler for it (a reply after the saga moved
// on) is recorded as stale and does nothing; a definition that must react
// to a late event (compensate a success that came after it gave up) gives
// a handler for Otherwise.
//
// Status. An instance is running until it enters a final state
// (completed); a step may declare it stuck (a compensation that keeps
// failing), which an operator sees and retries (POST
// /api/v1/admin/sagas/:type/:id/retry). An event that moves a stuck
// instance to another state makes it running again. An operator's cancel
// stops an instance for good (cancelled): later events and timers are
// recorded as stale. Sagas are never replayed.
package saga

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// Status is where an instance stands as a whole.
type Status string

// The statuses of an instance.
const (
	Running   Status = "running"   // not in a final state
	Completed Status = "completed" // in a final state
	Stuck     Status = "stuck"     // a step gave up; waiting for an operator (or a late reply)
	Cancelled Status = "cancelled" // stopped by an operator; nothing runs any more
)

// Otherwise is the state key of a handler that runs in every state the
// handler map names no other handler for: a late reply's compensation.
const Otherwise = "*"

// State is one state of a saga. Final states complete the instance; an
// event may still move it out of one (a cancel after approval).
type State struct {
	Name  string
	Final bool
}

// Spec describes a saga.
type Spec struct {
	// Type names the saga: "<module>_<name>" in lower snake case. It
	// prefixes the durable consumers of its handlers, so it is a contract.
	Type string
	// Initial is the state a new instance starts in.
	Initial string
	// States are every state an instance may be in. Start-up refuses to
	// run while a running or stuck instance is in a state not listed.
	States []State
}

// Handler reacts to event e in one step of an instance.
type Handler[D, T any] func(ctx context.Context, s *Step[D], e outbox.Received[T]) error

// StepFunc is a step with no event: a timer, an operator's retry.
type StepFunc[D any] func(ctx context.Context, s *Step[D]) error

// Definition is a saga whose instances carry data of type D (encoded as
// JSON). Build it with Define, On, OnTimer and OnRetry at start-up, then
// register it.
type Definition[D any] struct {
	spec     Spec
	states   map[string]State
	handlers []func(subs *outbox.Subscriptions) error
	timers   map[string]StepFunc[D]
	retry    StepFunc[D]
	errs     []error
}

var (
	sagaType = regexp.MustCompile(`^[a-z][a-z0-9]*_[a-z][a-z0-9_]*$`)
	name     = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Define starts the definition of a saga. Mistakes (a malformed type or
// state, an initial state not listed) are reported by Register.
func Define[D any](s Spec) *Definition[D] {
	def := &Definition[D]{spec: s, states: map[string]State{}, timers: map[string]StepFunc[D]{}}
	if !sagaType.MatchString(s.Type) {
		def.fail("type %q is not <module>_<name> in lower snake case", s.Type)
	}
	for _, st := range s.States {
		if !name.MatchString(st.Name) {
			def.fail("state %q is not lower snake case", st.Name)
		}
		if _, dup := def.states[st.Name]; dup {
			def.fail("state %s listed twice", st.Name)
		}
		def.states[st.Name] = st
	}
	if _, ok := def.states[s.Initial]; !ok {
		def.fail("initial state %q is not among its states", s.Initial)
	}
	return def
}

// Type is the saga's type name.
func (def *Definition[D]) Type() string { return def.spec.Type }

func (def *Definition[D]) fail(format string, args ...any) {
	def.errs = append(def.errs, fmt.Errorf("saga %s: "+format, append([]any{def.spec.Type}, args...)...))
}

// On makes instances react to the events of on: correlate names the
// instance an event is for (its id; "" parks the event as a dead letter),
// and in maps each state to the handler that runs in it (Otherwise: in any
// state not named). In a state with no handler the event is recorded as
// stale. The durable consumer is <saga type>_<handler>; opts tune it.
func On[D, T any](def *Definition[D], handler string, on outbox.Target[T], correlate func(outbox.Received[T]) string,
	in map[string]Handler[D, T], opts ...outbox.Option) {
	if !name.MatchString(handler) {
		def.fail("handler name %q is not lower snake case", handler)
	}
	for st := range in {
		if _, ok := def.states[st]; !ok && st != Otherwise {
			def.fail("handler %s names state %q, which is not among its states", handler, st)
		}
	}
	consumer := def.spec.Type + "_" + handler
	// A saga's steps are its commands: replayed, they would go out again.
	opts = append(opts, outbox.NeverReplay("a saga's steps issue its commands; replayed, they would issue them again"))
	def.handlers = append(def.handlers, func(subs *outbox.Subscriptions) error {
		return outbox.Handle(subs, consumer, on, func(ctx context.Context, tx pgx.Tx, e outbox.Received[T]) error {
			id := correlate(e)
			if id == "" {
				return outbox.Permanent(fmt.Errorf("saga %s: %s %s names no instance", def.spec.Type, e.Event.Type, e.ID))
			}
			c := cause{Type: e.Event.Type, ID: e.ID, Causation: e.Event.CausationID}
			return def.step(ctx, tx, id, c, func(s *Step[D]) (bool, error) {
				h, ok := in[s.state]
				if !ok {
					h, ok = in[Otherwise]
				}
				if !ok {
					return false, nil
				}
				return true, h(ctx, s, e)
			})
		}, opts...)
	})
}

// OnTimer gives the handler of the timer name (set with Step.SetTimer). It
// runs only if the instance is still at the version the timer was set at.
func OnTimer[D any](def *Definition[D], name string, h StepFunc[D]) {
	if _, dup := def.timers[name]; dup {
		def.fail("timer %s has two handlers", name)
	}
	def.timers[name] = h
}

// OnRetry gives what an operator's retry of a stuck instance does (resend
// the compensation that kept failing, say). Without it, retry is refused.
func OnRetry[D any](def *Definition[D], h StepFunc[D]) { def.retry = h }

// step loads and locks instance id in tx, runs fn on it, and records what
// fn did (or, when fn handled nothing, a stale step).
func (def *Definition[D]) step(ctx context.Context, tx pgx.Tx, id string, c cause, fn func(*Step[D]) (handled bool, err error)) error {
	inst, err := lockInstance(ctx, tx, def.spec.Type, id)
	if errors.Is(err, ErrNotFound) {
		return outbox.Permanent(fmt.Errorf("saga %s: no instance %s for %s %s", def.spec.Type, id, c.Type, c.ID))
	}
	if err != nil {
		return err
	}
	s, err := def.load(tx, inst, c)
	if err != nil {
		return err
	}
	if inst.status == Cancelled {
		return s.recordStale(ctx, "the instance was cancelled by an operator")
	}
	handled, err := fn(s)
	if err != nil {
		return err
	}
	if !handled {
		return s.recordStale(ctx, "no handler in state "+inst.state)
	}
	return s.commit(ctx)
}

// Start creates instance id in tx, the transaction of the use case that
// begins it, in the initial state with data; init may send events and
// commands, set timers and move it on, as a step does. Errors: ErrExists
// when the instance exists already, init's, and the database's.
func (def *Definition[D]) Start(ctx context.Context, tx pgx.Tx, id string, data D, causeName string, init StepFunc[D]) error {
	s := &Step[D]{Data: data, def: def, tx: tx, id: id, from: "", state: def.spec.Initial, status: Running,
		cause: cause{Type: causeName}, kind: kindStart, timers: map[string]*time.Duration{}}
	if init != nil {
		if err := init(ctx, s); err != nil {
			return err
		}
	}
	return s.commit(ctx)
}

// fire runs the timer t of inst in tx (its row already deleted).
func (def *Definition[D]) fire(ctx context.Context, tx pgx.Tx, inst instance, t timer) error {
	s, err := def.load(tx, inst, cause{Type: "timer:" + t.name, due: t.fireAt})
	if err != nil {
		return err
	}
	switch h := def.timers[t.name]; {
	case inst.status == Cancelled:
		return s.recordStale(ctx, "the instance was cancelled by an operator")
	case t.version != inst.version:
		return s.recordStale(ctx, fmt.Sprintf("set at version %d; the instance is at %d", t.version, inst.version))
	case h == nil:
		return s.recordStale(ctx, "no handler for timer "+t.name)
	default:
		if err := h(ctx, s); err != nil {
			return err
		}
		return s.commit(ctx)
	}
}

// retryStuck runs the definition's retry handler on a stuck instance.
func (def *Definition[D]) retryStuck(ctx context.Context, tx pgx.Tx, inst instance) error {
	if def.retry == nil {
		return ErrNoRetry
	}
	s, err := def.load(tx, inst, cause{Type: causeRetry})
	if err != nil {
		return err
	}
	s.kind, s.status = kindRetry, Running
	if err := def.retry(ctx, s); err != nil {
		return err
	}
	return s.commit(ctx)
}

func (def *Definition[D]) describe() Spec { return def.spec }

func (def *Definition[D]) knows(state string) bool { _, ok := def.states[state]; return ok }

func (def *Definition[D]) final(state string) bool { return def.states[state].Final }

// register adds the definition's consumers to subs (nil: check only).
func (def *Definition[D]) register(subs *outbox.Subscriptions) error {
	if len(def.errs) > 0 {
		return errors.Join(def.errs...)
	}
	for _, h := range def.handlers {
		if err := h(subs); err != nil {
			return fmt.Errorf("saga %s: %w", def.spec.Type, err)
		}
	}
	return nil
}

// Saga is a definition as the registry keeps it, whatever its data type.
// Only Definition implements it.
type Saga interface {
	describe() Spec
	knows(state string) bool
	final(state string) bool
	register(subs *outbox.Subscriptions) error
	fire(ctx context.Context, tx pgx.Tx, inst instance, t timer) error
	retryStuck(ctx context.Context, tx pgx.Tx, inst instance) error
}
