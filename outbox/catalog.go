package outbox

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// EventSpec declares one event type: the contract with every consumer.
type EventSpec struct {
	// Type is the versioned name "<module>.<event_name>.v<N>": an explicit
	// constant, never derived from a Go type name. A breaking change of the
	// payload is a new version, declared beside the old one.
	Type string
	// Visibility is who may read it: Public (stream EVENTS, external
	// subscribers) or Internal (stream INTERNAL, Cairn only).
	Visibility Visibility
	// Description says in one line what happened, for the catalog and the
	// contracts generated from it.
	Description string
}

// Declared is an event type as the catalog knows it.
type Declared struct {
	EventSpec
	// Payload is the Go type of the event's data; its JSON encoding is the
	// payload's schema.
	Payload reflect.Type
	// Fields are the payload's JSON fields, nested ones as dotted paths
	// ("customer.email"), each with how it is classified.
	Fields []Field
}

// Subject is the NATS subject events of this type are published on.
func (d Declared) Subject() string { return Subject(d.Type, d.Visibility) }

// Field is one JSON field of a payload. A payload's Go struct classifies a
// field with the tag cairn:"secret" or cairn:"personal" (or both, comma
// separated). Secret fields are redacted wherever an event is kept for
// operators (RedactEvent: dead letters, the admin API) and never reach the
// lake. Personal fields are stored in the lake sealed with a key of the
// person they belong to (outbox/privacy), which forgetting the person
// destroys: cairn:"personal,subject=user_id" says the person is the one
// whose id is the payload's field user_id; without subject=, the person is
// the event's key.
type Field struct {
	Path string
	// Secret fields (an activation token) must never be kept in clear
	// outside the stream that carries the event to its consumer.
	Secret bool
	// Personal fields (an email address) identify a person and are what
	// forgetting a person erases.
	Personal bool
	// Subject is, for a personal field, the path of the field holding the
	// person's id; "" means the event's key.
	Subject string
	// Kind is the Go kind of the field's value (pointers removed).
	Kind reflect.Kind
}

// PersonalFields returns the personal fields of a declared event type.
func PersonalFields(eventType string) []Field {
	d, ok := Lookup(eventType)
	if !ok {
		return nil
	}
	var out []Field
	for _, f := range d.Fields {
		if f.Personal {
			out = append(out, f)
		}
	}
	return out
}

// EventType is a declared event type whose payload is T: the typed handle a
// module appends with (New) and other modules subscribe with (Handle).
type EventType[T any] struct{ d *Declared }

// catalog is the process-wide set of declared types. Declarations run during
// package initialisation, before any module is built; Append reads the map
// on every event, so it is swapped whole and read without a lock.
var (
	catalogMu sync.Mutex // serialises Declare
	catalog   atomic.Pointer[map[string]*Declared]
)

// Declare adds an event type to the catalog and returns its typed handle.
// Call it once per type, in the module's events.go:
//
//	var EventAccountCreated = outbox.Declare[AccountCreated](outbox.EventSpec{
//		Type: "users.account_created.v1", Visibility: outbox.Public,
//		Description: "A user signed up; the account is pending until activated.",
//	})
//
// It panics on a malformed name, an unknown visibility, a missing
// description, an unknown cairn tag or a type declared twice: all mistakes
// in the program that start-up must not survive.
func Declare[T any](s EventSpec) EventType[T] {
	d := &Declared{EventSpec: s, Payload: reflect.TypeFor[T]()}
	if err := d.validate(); err != nil {
		panic(err)
	}
	fields, err := payloadFields(d.Payload, "", nil)
	if err == nil {
		err = checkSubjects(fields)
	}
	if err != nil {
		panic(fmt.Errorf("outbox: declare %s: %w", s.Type, err))
	}
	d.Fields = fields
	catalogMu.Lock()
	defer catalogMu.Unlock()
	next := map[string]*Declared{}
	if cur := catalog.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	if old, ok := next[s.Type]; ok {
		panic(fmt.Errorf("outbox: event type %s declared twice (payloads %s and %s)", s.Type, old.Payload, d.Payload))
	}
	next[s.Type] = d
	catalog.Store(&next)
	return EventType[T]{d}
}

func (d *Declared) validate() error {
	switch {
	case !typePattern.MatchString(d.Type):
		return fmt.Errorf("outbox: event type %q is not <module>.<event_name>.v<N> in lower snake case", d.Type)
	case d.Visibility != Public && d.Visibility != Internal:
		return fmt.Errorf("outbox: event type %s has unknown visibility %d", d.Type, d.Visibility)
	case strings.TrimSpace(d.Description) == "" || strings.Contains(d.Description, "\n"):
		return fmt.Errorf("outbox: event type %s needs a one-line description", d.Type)
	case d.Payload.Kind() == reflect.Interface:
		return fmt.Errorf("outbox: event type %s needs a concrete payload type, not %s", d.Type, d.Payload)
	}
	return nil
}

// Lookup returns the declaration of an event type.
func Lookup(eventType string) (Declared, bool) {
	if cur := catalog.Load(); cur != nil {
		if d, ok := (*cur)[eventType]; ok {
			return *d, true
		}
	}
	return Declared{}, false
}

// Catalog returns every declared event type, sorted by name: the source for
// generated contracts (AsyncAPI, JSON Schema).
func Catalog() []Declared {
	var out []Declared
	if cur := catalog.Load(); cur != nil {
		for _, d := range *cur {
			out = append(out, *d)
		}
	}
	slices.SortFunc(out, func(a, b Declared) int { return strings.Compare(a.Type, b.Type) })
	return out
}

// Name is the event type's versioned name, "users.account_created.v1".
func (e EventType[T]) Name() string { return e.d.Type }

// Visibility is who may read events of this type.
func (e EventType[T]) Visibility() Visibility { return e.d.Visibility }

// Declared returns the type's declaration.
func (e EventType[T]) Declared() Declared { return *e.d }

// New returns an event of this type for Append or Queue: key is the
// aggregate id, the unit of ordering.
func (e EventType[T]) New(key string, data T) Event {
	return Event{Type: e.d.Type, Key: key, Data: data}
}

// String is the type's name.
func (e EventType[T]) String() string { return e.d.Type }

// payloadFields lists the JSON fields of t, descending into structs, and
// reads their classification. seen stops a recursive type.
func payloadFields(t reflect.Type, prefix string, seen []reflect.Type) ([]Field, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || slices.Contains(seen, t) {
		return nil, nil
	}
	seen = append(seen, t)
	var out []Field
	for _, f := range jsonFields(t) {
		path := prefix + f.name
		ft := f.sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		fd := Field{Path: path, Kind: ft.Kind()}
		if tag, ok := f.sf.Tag.Lookup("cairn"); ok {
			for _, v := range strings.Split(tag, ",") {
				v = strings.TrimSpace(v)
				switch {
				case v == "secret":
					fd.Secret = true
				case v == "personal":
					fd.Personal = true
				case strings.HasPrefix(v, "subject="):
					fd.Subject = strings.TrimPrefix(v, "subject=")
				default:
					return nil, fmt.Errorf("field %s: unknown cairn tag %q (secret, personal, subject=<field>)", path, v)
				}
			}
			if fd.Subject != "" && !fd.Personal {
				return nil, fmt.Errorf("field %s: subject= names whose personal data a field is: tag it personal too", path)
			}
		}
		out = append(out, fd)
		nested, err := payloadFields(f.sf.Type, path+".", seen)
		if err != nil {
			return nil, err
		}
		out = append(out, nested...)
	}
	return out, nil
}

// jsonField is one field of a struct as encoding/json sees it.
type jsonField struct {
	name string
	sf   reflect.StructField
}

// jsonFields returns the fields encoding/json encodes, by JSON name, with
// untagged embedded structs flattened as it does.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			out = append(out, jsonFields(ft)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name, sf})
	}
	return out
}

// checkSubjects checks that each personal field's subject= names a field
// of the payload that is neither personal nor secret (an id).
func checkSubjects(fields []Field) error {
	byPath := map[string]Field{}
	for _, f := range fields {
		byPath[f.Path] = f
	}
	for _, f := range fields {
		if f.Subject == "" {
			continue
		}
		s, ok := byPath[f.Subject]
		switch {
		case !ok:
			return fmt.Errorf("field %s: subject=%s names no field of the payload", f.Path, f.Subject)
		case s.Personal || s.Secret:
			return fmt.Errorf("field %s: subject=%s must name an id, not a personal or secret field", f.Path, f.Subject)
		case s.Kind != reflect.String:
			return fmt.Errorf("field %s: subject=%s must be a string (an id)", f.Path, f.Subject)
		}
	}
	return nil
}
