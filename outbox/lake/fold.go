package lake

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/outbox"
)

// Folds are the folds modules register, one per aggregate they own
// (modules.Deps.Folds): how the lake computes an entity's state as of any
// moment from its events. The zero value is ready to use.
type Folds struct {
	mu     sync.RWMutex
	byName map[string]*fold
	byType map[string]*fold
}

// fold is one aggregate's registered fold, its state type erased.
type fold struct {
	name     string
	newState func() any
	steps    map[string]func(state any, e Event, data json.RawMessage) error
}

// Event is what a fold step gets besides the event's data.
type Event struct {
	ID       string
	Type     string
	Time     time.Time
	Position int64
}

// Step folds one event type into an aggregate's state S; make it with On.
type Step[S any] struct {
	eventType string
	apply     func(s *S, e Event, data json.RawMessage) error
}

// On is the step of event type e: apply changes the state s by the event's
// data, decoded into e's payload type.
func On[S, T any](e outbox.EventType[T], apply func(s *S, e Event, data T)) Step[S] {
	return Step[S]{eventType: e.Name(), apply: func(s *S, ev Event, raw json.RawMessage) error {
		var data T
		if err := json.Unmarshal(raw, &data); err != nil {
			return fmt.Errorf("lake: fold %s: decode %s: %w", ev.ID, ev.Type, err)
		}
		apply(s, ev, data)
		return nil
	}}
}

// Fold registers aggregate's fold on f: its state is S (a struct whose
// JSON encoding is the "state" the lake answers with), starting from S's
// zero value and changed by each step's event type in position order. The
// fold of a key is the one that reads the first of its events any fold
// reads; events of types it has no step for are passed over (mail's event
// about a user, say). A nil f registers nothing (a module built without
// the platform, in a test). Errors: an aggregate registered twice, no
// steps, or an event type another fold already reads.
func Fold[S any](f *Folds, aggregate string, steps ...Step[S]) error {
	if f == nil {
		return nil
	}
	if aggregate == "" || len(steps) == 0 {
		return fmt.Errorf("lake: fold %q needs a name and at least one step", aggregate)
	}
	fd := &fold{name: aggregate, newState: func() any { return new(S) }, steps: map[string]func(any, Event, json.RawMessage) error{}}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byName == nil {
		f.byName, f.byType = map[string]*fold{}, map[string]*fold{}
	}
	if _, dup := f.byName[aggregate]; dup {
		return fmt.Errorf("lake: fold %s registered twice", aggregate)
	}
	for _, st := range steps {
		if other, taken := f.byType[st.eventType]; taken {
			return fmt.Errorf("lake: fold %s: event type %s is already read by fold %s", aggregate, st.eventType, other.name)
		}
		if _, dup := fd.steps[st.eventType]; dup {
			return fmt.Errorf("lake: fold %s: two steps for %s", aggregate, st.eventType)
		}
	}
	for _, st := range steps {
		apply := st.apply
		fd.steps[st.eventType] = func(state any, e Event, data json.RawMessage) error { return apply(state.(*S), e, data) }
		f.byType[st.eventType] = fd
	}
	f.byName[aggregate] = fd
	return nil
}

// types lists every event type some fold reads: its steps' types and the
// older versions of those that upcast to them.
func (f *Folds) types() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, 0, len(f.byType))
	for t := range f.byType {
		out = append(out, t)
		out = append(out, outbox.OlderVersions(t)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// typesOf lists the event types aggregate's fold reads; nil for an
// aggregate with no fold.
func (f *Folds) typesOf(aggregate string) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fd, ok := f.byName[aggregate]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(fd.steps))
	for t := range fd.steps {
		out = append(out, t)
		out = append(out, outbox.OlderVersions(t)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ofType returns the fold that reads events of type t and the type of the
// step that reads them: t itself, or the newer version t upcasts to.
func (f *Folds) ofType(t string) (*fold, string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if fd, ok := f.byType[t]; ok {
		return fd, t
	}
	for st, fd := range f.byType {
		if _, ok := outbox.UpcastPath(t, st); ok {
			return fd, st
		}
	}
	return nil, ""
}

// Names lists the registered aggregates, sorted.
func (f *Folds) Names() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]string, 0, len(f.byName))
	for n := range f.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
