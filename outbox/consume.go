package outbox

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Delivery is one event handed to a handler.
type Delivery struct {
	Event   CloudEvent
	Subject string
	// Attempt counts from 1, across redeliveries and retries.
	Attempt int
	// EffectResult is what the subscription's Effect returned for this
	// event (nil without an Effect).
	EffectResult any
	// Term, when set, reports whether this replica may still act for the
	// consumer: nil while it holds the consumer's lease, an error once its
	// term is over. Use CheckTerm.
	Term func() error
}

// CheckTerm returns nil while the runtime that handed over d still holds
// the consumer's lease. Call it right before a call to an outside system
// (an email, a payment) that the database cannot fence: after a takeover
// another replica handles the event, and this one must not act. Errors: the
// lease's, once the term has ended.
func (d Delivery) CheckTerm() error {
	if d.Term == nil {
		return nil
	}
	return d.Term()
}

// Handler reacts to one event inside tx. The consumer runtime records the
// event in the inbox in the same transaction and acknowledges the message
// only after commit, so a redelivered event has no second effect. Events
// the handler appends with outbox.Append(ctx, tx, …) commit with it and
// carry the handled event as their cause. A handler should make its calls
// to outside systems before its first write: until then the transaction
// holds no id and does not hold back the relay.
//
// Return an error to have the event retried (capped exponential backoff)
// and, after MaxAttempts, parked as a dead letter; wrap it with Permanent to
// park it at once, or with Unavailable when an outside system is down, to
// pause the whole consumer instead.
//
// Modules write typed handlers and register them with Handle, which decodes
// the data; Handler is the runtime's undecoded form.
type Handler func(ctx context.Context, tx pgx.Tx, d Delivery) error

// Effect is the first phase of an effectful handler: its call to an outside
// system (an email, a gateway), made before the runtime opens the handler's
// transaction, so no connection or transaction is held while the outside
// system takes its time. db is the runtime's own pool, for reads the effect
// needs (do not hold a transaction on it across the outside call). What it
// returns reaches Handle as Delivery.EffectResult; Handle then records the
// outcome in the transaction. Within one delivery, a result that succeeded
// is reused if only the transaction has to be retried; after a crash or a
// takeover the effect runs again (outside effects are at least once). Its
// errors mean what Handle's mean.
type Effect func(ctx context.Context, db *pgxpool.Pool, d Delivery) (result any, err error)

// Subscription is a handler for one event type as the consumer runtime runs
// it; Handle builds one from a typed handler.
type Subscription struct {
	// Consumer names the JetStream durable consumer, "<module>_<handler>".
	// It is a contract: renaming it consumes the whole history again.
	Consumer   string
	EventType  string
	Visibility Visibility
	Handle     Handler
	// Effect, if set, runs before Handle, outside any transaction.
	Effect Effect
	// MaxAttempts before the event is parked as a dead letter (default 5).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (default 30s).
	MaxBackoff time.Duration

	// Replay is what a replay may do with the handler (policy.go); Reset
	// clears a rebuildable one's state, NeverWhy says why a replay is
	// refused, and Batch, if set, handles runs of events in replays.
	Replay   ReplayPolicy
	Reset    ResetFunc
	NeverWhy string
	Batch    BatchHandler
	// Start is where the consumer begins when its durable is first made.
	Start Start
	// Older are the older versions of EventType the handler also reads,
	// upcast (OlderVersions): the live runtime, replays and seeding hand
	// their events over as EventType.
	Older []string

	batchType reflect.Type // ReplayBatch's payload type
}

// EventTypes are the types the subscription reads: EventType and Older.
func (s Subscription) EventTypes() []string {
	return append([]string{s.EventType}, s.Older...)
}

// Subjects are the NATS subjects of EventTypes, the durable's filter.
func (s Subscription) Subjects() []string {
	out := make([]string, 0, 1+len(s.Older))
	for _, t := range s.EventTypes() {
		out = append(out, Subject(t, s.Visibility))
	}
	return out
}

var consumerName = regexp.MustCompile(`^[a-z][a-z0-9]*_[a-z][a-z0-9_]*$`)

// Validate reports what is wrong with a subscription.
func (s Subscription) Validate() error {
	switch {
	case !consumerName.MatchString(s.Consumer):
		return fmt.Errorf("outbox: consumer name %q is not <module>_<handler> in lower snake case", s.Consumer)
	case !typePattern.MatchString(s.EventType):
		return fmt.Errorf("outbox: consumer %s: event type %q is not <module>.<event_name>.v<N>", s.Consumer, s.EventType)
	case s.Handle == nil:
		return fmt.Errorf("outbox: consumer %s has no handler", s.Consumer)
	case s.Visibility != Public && s.Visibility != Internal:
		return fmt.Errorf("outbox: consumer %s: unknown visibility", s.Consumer)
	}
	return s.checkPolicy()
}

// Subscriptions collects the handlers modules declare at start-up; the
// consumer runtime runs them. Safe for concurrent use.
type Subscriptions struct {
	mu   sync.Mutex
	subs []Subscription
}

// Add declares a handler. A nil registry checks s and keeps nothing, so a
// test can build a module without running its consumers. Errors: an invalid
// subscription, an event type the catalog does not know or declares with
// another visibility, or a consumer name already taken.
func (r *Subscriptions) Add(s Subscription) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, err := checkTarget(s.Consumer, s.EventType, s.Visibility); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.subs {
		if o.Consumer != s.Consumer {
			continue
		}
		if a, _ := family(o.EventType); o.EventType != s.EventType && a == fst(family(s.EventType)) {
			return fmt.Errorf("outbox: consumer %s handles two versions of one event (%s and %s): subscribe to the newest alone; "+
				"older events reach it upcast (outbox.Upcast)", s.Consumer, o.EventType, s.EventType)
		}
		return fmt.Errorf("outbox: consumer %s declared twice", s.Consumer)
	}
	r.subs = append(r.subs, s)
	return nil
}

// All returns the declared subscriptions.
func (r *Subscriptions) All() []Subscription {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Subscription(nil), r.subs...)
}

// handlerError is a handler's error marked with what the runtime should do
// about it: "unavailable" (pause) or "permanent" (park at once).
type handlerError struct {
	mark string
	err  error
}

func (e handlerError) Error() string { return e.mark + ": " + e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

func marked(err error, mark string) bool {
	var h handlerError
	for e := err; errors.As(e, &h); e = h.err {
		if h.mark == mark {
			return true
		}
	}
	return false
}

// Unavailable wraps err to say an outside system is down: the consumer
// pauses and retries this event slowly, in order, without counting
// attempts towards the dead-letter limit.
func Unavailable(err error) error { return handlerError{"unavailable", err} }

// IsUnavailable reports whether err was wrapped with Unavailable.
func IsUnavailable(err error) bool { return marked(err, "unavailable") }

// Permanent wraps err to say this event will never succeed (it contradicts
// the consumer's state, say): it is parked as a dead letter at once, without
// retries. An event whose data cannot be decoded is parked so too.
func Permanent(err error) error { return handlerError{"permanent", err} }

// IsPermanent reports whether err was wrapped with Permanent.
func IsPermanent(err error) bool { return marked(err, "permanent") }

func fst[A, B any](a A, _ B) A { return a }
