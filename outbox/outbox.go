// Package outbox is how a module publishes events: it appends them inside
// the module's own pgx.Tx, so the events commit or roll back with the state
// change that caused them. Nothing else in Cairn publishes to NATS; the relay
// (outbox/relay) tails the table and does.
//
// This package never imports NATS, so modules that use it stay free of it.
package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/cairn-dev/cairn/errs"
)

// Visibility says who may read an event.
type Visibility int

const (
	// Public events go to subject events.<type> in stream EVENTS, readable
	// by external subscribers.
	Public Visibility = iota
	// Internal events go to internal.<type> in stream INTERNAL, which
	// external users can never read (for example a mail token).
	Internal
)

// Subject prefixes and streams; part of Cairn's contract with subscribers.
const (
	PublicPrefix   = "events."
	InternalPrefix = "internal."
	PublicStream   = "EVENTS"
	InternalStream = "INTERNAL"
)

// String is "public" or "internal".
func (v Visibility) String() string {
	switch v {
	case Public:
		return "public"
	case Internal:
		return "internal"
	}
	return fmt.Sprintf("visibility(%d)", int(v))
}

// Event is what a module appends; a declared type's New builds one. Type is
// a name declared in the catalog (Declare), which also says the event's
// visibility; Key is the aggregate id, the unit of ordering; Data is the
// declared payload type, marshalled to JSON.
type Event struct {
	Type string
	Key  string
	Data any
	// ID is the event id; empty means a new one. Set it (from NewID) when
	// the same transaction must record the id before appending, as the
	// ledger's log does.
	ID string
}

var typePattern = regexp.MustCompile(`^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.v([1-9][0-9]*)$`)

// Module returns the module part of a valid event type.
func Module(eventType string) string {
	m, _, _ := strings.Cut(eventType, ".")
	return m
}

// Subject returns the NATS subject an event of this type and visibility is
// published on.
func Subject(eventType string, v Visibility) string {
	if v == Internal {
		return InternalPrefix + eventType
	}
	return PublicPrefix + eventType
}

// declaration returns the event's declaration after checking the event
// against it: the type is declared, the key set, the data of the declared
// Go type.
func (e Event) declaration() (*Declared, error) {
	cur := catalog.Load()
	var d *Declared
	if cur != nil {
		d = (*cur)[e.Type]
	}
	switch {
	case d == nil:
		return nil, fmt.Errorf("outbox: event type %q is not declared: declare it once with outbox.Declare in its module's events.go", e.Type)
	case e.Key == "":
		return nil, fmt.Errorf("outbox: event %s has no key", e.Type)
	case reflect.TypeOf(e.Data) != d.Payload:
		return nil, fmt.Errorf("outbox: event %s: data is %s, but the type is declared with payload %s", e.Type, typeName(reflect.TypeOf(e.Data)), d.Payload)
	}
	return d, nil
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}

func marshalData(e Event) (json.RawMessage, error) {
	if raw, ok := e.Data.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("outbox: event %s: data is not valid JSON", e.Type)
		}
		return raw, nil
	}
	b, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("outbox: event %s: marshal data: %w", e.Type, err)
	}
	return b, nil
}

// ErrEventTooLarge: an event is bigger than the NATS server accepts, so the
// relay could never publish it. Append refuses it, and the request that
// caused it rolls back (HTTP 422).
var ErrEventTooLarge = errs.New(errs.Unprocessable, "event_too_large", "the change is too large to publish as an event")

// ErrDuplicateEventID: an event id given in Event.ID is already waiting in
// the outbox. Ids come from NewID; a reused one is a bug in the caller.
var ErrDuplicateEventID = errors.New("outbox: event id already used")

// DefaultMaxPayload is NATS's default max_payload, the limit until
// SetMaxPayload is called.
const DefaultMaxPayload = 1 << 20

// headerReserve is what the relay's headers may add to an event's payload
// (message id, expected sequence, batch headers; see outbox/relay).
const headerReserve = 512

var maxPayload atomic.Int64

func init() { maxPayload.Store(DefaultMaxPayload) }

// SetMaxPayload sets the largest message the connected NATS server accepts
// (nats.Conn.MaxPayload), which bounds the events Append accepts. The
// process sets it once connected; this package never talks to NATS itself.
func SetMaxPayload(n int64) {
	if n > 0 {
		maxPayload.Store(n)
	}
}

// maxEventBytes is the largest encoded event Append accepts.
func maxEventBytes() int64 { return maxPayload.Load() - headerReserve }
