package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Received is one event handed to a typed handler, its data decoded.
type Received[T any] struct {
	ID   string    // the event id
	Key  string    // the aggregate id (the CloudEvents subject)
	Time time.Time // when it was appended
	Data T
	// Attempt counts from 1, across redeliveries and retries.
	Attempt int
	// Event is the envelope as it arrived, with its correlation and
	// causation ids; its Data is the undecoded JSON.
	Event CloudEvent

	term func() error
}

// CheckTerm returns nil while this replica still holds the consumer's
// lease; see Delivery.CheckTerm. Call it right before an outside call.
func (r Received[T]) CheckTerm() error {
	if r.term == nil {
		return nil
	}
	return r.term()
}

// Target is the event a typed handler consumes: a declared EventType[T], or
// Named for an event of a module the consumer may not import.
type Target[T any] interface {
	target() (eventType string, v Visibility, declared bool)
	decodes(T)
}

func (e EventType[T]) target() (string, Visibility, bool) { return e.d.Type, e.d.Visibility, true }
func (EventType[T]) decodes(T)                            {}

// NamedEvent is an event type named by its contract: see Named.
type NamedEvent[T any] struct {
	eventType  string
	visibility Visibility
}

// Named refers to another module's event by its name and visibility, to be
// decoded into the consumer's own type T, so that the consumer does not
// import the producer. Handle checks at start-up that the name is declared
// with that visibility and that T reads only fields the declared payload
// has, with JSON types that decode.
func Named[T any](eventType string, v Visibility) NamedEvent[T] {
	return NamedEvent[T]{eventType, v}
}

func (n NamedEvent[T]) target() (string, Visibility, bool) { return n.eventType, n.visibility, false }
func (NamedEvent[T]) decodes(T)                            {}

// Option tunes a subscription.
type Option func(*Subscription)

// MaxAttempts is how often an event that fails with an ordinary error is
// tried before it is parked as a dead letter (default 5).
func MaxAttempts(n int) Option { return func(s *Subscription) { s.MaxAttempts = n } }

// MaxBackoff caps the wait between attempts (default 30s).
func MaxBackoff(d time.Duration) Option { return func(s *Subscription) { s.MaxBackoff = d } }

// Handle registers h as the handler of consumer for the events of on, on
// subs (nil: check only, as Add). consumer names the JetStream durable,
// "<module>_<handler>"; it is a contract, and renaming it consumes the whole
// history again. The runtime decodes each event's data into T: an event that
// does not decode is parked as a dead letter at once, with the decode error.
// Errors, meant to stop start-up: on names a type the catalog does not know,
// or with another visibility than declared, or T cannot decode the declared
// payload; and Add's.
func Handle[T any](subs *Subscriptions, consumer string, on Target[T], h func(ctx context.Context, tx pgx.Tx, e Received[T]) error, opts ...Option) error {
	s, err := subscription(consumer, on, h == nil)
	if err != nil {
		return err
	}
	s.Handle = decoding(h)
	for _, o := range opts {
		o(&s)
	}
	if s.batchType != nil && s.batchType != reflect.TypeFor[T]() {
		return fmt.Errorf("outbox: consumer %s: ReplayBatch reads %s, the handler %s", consumer, s.batchType, reflect.TypeFor[T]())
	}
	return subs.Add(s)
}

// HandleEffect registers a two-phase handler, for a consumer that calls an
// outside system (an email, a payment): effect makes the call before the
// runtime opens a transaction, so no connection or transaction is held
// while the outside system takes its time (db is the runtime's pool, for
// reads); record then runs in the handler's transaction with effect's
// result, as Handle's handler does. Call e.CheckTerm() in effect right
// before the outside call. Outside effects are at least once: after a crash
// or a takeover between the two phases, effect runs again, so make it
// idempotent where the outside system allows (an idempotency key). Errors:
// Handle's.
func HandleEffect[T, R any](subs *Subscriptions, consumer string, on Target[T],
	effect func(ctx context.Context, db *pgxpool.Pool, e Received[T]) (R, error),
	record func(ctx context.Context, tx pgx.Tx, e Received[T], r R) error, opts ...Option) error {
	s, err := subscription(consumer, on, effect == nil || record == nil)
	if err != nil {
		return err
	}
	s.Effect = func(ctx context.Context, db *pgxpool.Pool, d Delivery) (any, error) {
		r, err := received[T](d)
		if err != nil {
			return nil, err
		}
		return effect(ctx, db, r)
	}
	s.Handle = func(ctx context.Context, tx pgx.Tx, d Delivery) error {
		r, err := received[T](d)
		if err != nil {
			return err
		}
		res, ok := d.EffectResult.(R)
		if !ok {
			return fmt.Errorf("outbox: consumer %s: effect result is %T, not %T", consumer, d.EffectResult, res)
		}
		return record(ctx, tx, r, res)
	}
	for _, o := range opts {
		o(&s)
	}
	return subs.Add(s)
}

// subscription checks a typed handler's target against the catalog and
// returns its subscription without handlers.
func subscription[T any](consumer string, on Target[T], missingHandler bool) (Subscription, error) {
	eventType, v, declared := on.target()
	d, err := checkTarget(consumer, eventType, v)
	if err != nil {
		return Subscription{}, err
	}
	if mine := reflect.TypeFor[T](); mine != d.Payload {
		if declared {
			return Subscription{}, fmt.Errorf("outbox: consumer %s: %s is declared with payload %s, not %s", consumer, eventType, d.Payload, mine)
		}
		if err := decodable(mine, d.Payload, ""); err != nil {
			return Subscription{}, fmt.Errorf("outbox: consumer %s reads %s as %s, which cannot decode its declared payload %s: %w", consumer, eventType, mine, d.Payload, err)
		}
	}
	if missingHandler {
		return Subscription{}, fmt.Errorf("outbox: consumer %s has no handler", consumer)
	}
	older := OlderVersions(eventType)
	name, v0 := family(eventType)
	for _, d := range Catalog() {
		if n, dv := family(d.Type); n == name && dv < v0 && !slices.Contains(older, d.Type) {
			return Subscription{}, fmt.Errorf("outbox: consumer %s reads %s, but the older %s has no upcaster path to it: "+
				"its events could not reach the handler (register outbox.Upcast)", consumer, eventType, d.Type)
		}
	}
	for _, o := range older {
		od, _ := Lookup(o)
		if od.Visibility != v {
			return Subscription{}, fmt.Errorf("outbox: consumer %s: %s upcasts to %s but is %s", consumer, o, eventType, od.Visibility)
		}
	}
	return Subscription{Consumer: consumer, EventType: eventType, Visibility: v, Older: older}, nil
}

// checkTarget returns the declaration a consumer subscribes to, if the
// catalog knows the type with that visibility.
func checkTarget(consumer, eventType string, v Visibility) (Declared, error) {
	d, ok := Lookup(eventType)
	if !ok {
		return d, fmt.Errorf("outbox: consumer %s subscribes to %s, which no module declares: declare it with outbox.Declare in the producer's events.go (and build the producer into this binary)", consumer, eventType)
	}
	if d.Visibility != v {
		return d, fmt.Errorf("outbox: consumer %s subscribes to %s as %s, but the type is declared %s (payload %s)", consumer, eventType, v, d.Visibility, d.Payload)
	}
	return d, nil
}

// decoding adapts a typed handler to the runtime's Handler.
func decoding[T any](h func(ctx context.Context, tx pgx.Tx, e Received[T]) error) Handler {
	return func(ctx context.Context, tx pgx.Tx, d Delivery) error {
		r, err := received[T](d)
		if err != nil {
			return err
		}
		return h(ctx, tx, r)
	}
}

// received decodes a delivery for a typed handler; data that does not
// decode is a Permanent error, parked at once.
func received[T any](d Delivery) (Received[T], error) {
	r := Received[T]{ID: d.Event.ID, Key: d.Event.Subject, Time: d.Event.Time, Attempt: d.Attempt, Event: d.Event, term: d.Term}
	if err := decodeData(d.Event.Data, &r.Data); err != nil {
		return r, Permanent(fmt.Errorf("decode %s %s as %T: %w", d.Event.Type, d.Event.ID, r.Data, err))
	}
	return r, nil
}

// decodeData decodes an event's data; absent or null data is an error, as
// no declared payload is empty.
func decodeData(raw json.RawMessage, into any) error {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return fmt.Errorf("the event has no data")
	}
	return json.Unmarshal(raw, into)
}

// String is the event type's name.
func (n NamedEvent[T]) String() string { return n.eventType }
