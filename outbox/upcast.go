package outbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Upcasters turn an event of an older version of a type into the next one
// (ledger.deposited.v1 into ledger.deposited.v2), as a pure function on its
// JSON data. They chain: v1 reaches v3 through v2. The runtime applies them
// wherever an old event is read for a handler or a fold of a newer version:
// the live consumer runtime, replays, seeding and the lake's folds. So a
// module changes an event's shape by declaring the new version beside the
// old one with the upcaster between them, and its consumers move to the new
// version alone; the history keeps its old events as they were written.

type upcaster struct {
	to string
	fn func(json.RawMessage) (json.RawMessage, error)
}

var (
	upcastMu sync.RWMutex
	upcasts  = map[string]upcaster{} // from -> next version
)

// Upcast registers fn as the upcaster from one version of an event to a
// newer one of the same event (same module and name), typically in the
// producer's events.go beside both declarations:
//
//	var _ = outbox.Upcast(EventDepositedV1, EventDeposited, depositedV1ToV2)
//
// fn gets the older event's data and returns the newer's; it must not
// depend on anything else. It panics, as Declare does, on two versions of
// different events or visibilities, on a target that is not newer, or on
// a second upcaster from one version: mistakes start-up must not survive.
// It returns true so that it can initialise a package-level variable.
func Upcast[A, B any](from EventType[A], to EventType[B], fn func(data json.RawMessage) (json.RawMessage, error)) bool {
	f, t := from.Declared(), to.Declared()
	fromName, fromV := family(f.Type)
	toName, toV := family(t.Type)
	switch {
	case fromName != toName:
		panic(fmt.Errorf("outbox: upcast %s -> %s: versions of two different events", f.Type, t.Type))
	case toV <= fromV:
		panic(fmt.Errorf("outbox: upcast %s -> %s: the target must be a newer version", f.Type, t.Type))
	case f.Visibility != t.Visibility:
		panic(fmt.Errorf("outbox: upcast %s -> %s: both versions must have one visibility (%s, %s)", f.Type, t.Type, f.Visibility, t.Visibility))
	case fn == nil:
		panic(fmt.Errorf("outbox: upcast %s -> %s: no function", f.Type, t.Type))
	}
	upcastMu.Lock()
	defer upcastMu.Unlock()
	if old, dup := upcasts[f.Type]; dup {
		panic(fmt.Errorf("outbox: %s has two upcasters (to %s and %s)", f.Type, old.to, t.Type))
	}
	upcasts[f.Type] = upcaster{to: t.Type, fn: fn}
	return true
}

// family splits "ledger.deposited.v2" into "ledger.deposited" and 2.
func family(eventType string) (string, int) {
	i := strings.LastIndex(eventType, ".v")
	if i < 0 {
		return eventType, 0
	}
	v, err := strconv.Atoi(eventType[i+2:])
	if err != nil {
		return eventType, 0
	}
	return eventType[:i], v
}

// UpcastPath returns the chain of types from one version to another
// (excluding from, including to), and whether there is one. A type is its
// own path (empty).
func UpcastPath(from, to string) ([]string, bool) {
	upcastMu.RLock()
	defer upcastMu.RUnlock()
	var path []string
	for at := from; at != to; {
		u, ok := upcasts[at]
		if !ok || len(path) > 100 {
			return nil, false
		}
		path = append(path, u.to)
		at = u.to
	}
	return path, true
}

// UpcastData turns data of type from into data of type to through the
// registered chain. Errors: no chain, or an upcaster's error, naming the
// step.
func UpcastData(from, to string, data json.RawMessage) (json.RawMessage, error) {
	if from == to {
		return data, nil
	}
	upcastMu.RLock()
	defer upcastMu.RUnlock()
	for at := from; at != to; {
		u, ok := upcasts[at]
		if !ok {
			return nil, fmt.Errorf("outbox: no upcaster from %s towards %s", at, to)
		}
		next, err := u.fn(data)
		if err != nil {
			return nil, fmt.Errorf("outbox: upcast %s -> %s: %w", at, u.to, err)
		}
		data, at = next, u.to
	}
	return data, nil
}

// UpcastEvent rewrites ev, of an older version of target, into target:
// its data upcast and its type set to target (its id and everything else
// unchanged). An event of type target is left as it is.
func UpcastEvent(ev *CloudEvent, target string) error {
	if ev.Type == target {
		return nil
	}
	data, err := UpcastData(ev.Type, target, ev.Data)
	if err != nil {
		return err
	}
	ev.Type, ev.Data = target, data
	return nil
}

// OlderVersions returns the declared versions of target's event older than
// it that reach it by upcasting, oldest first: what a handler or fold of
// target also reads.
func OlderVersions(target string) []string {
	name, v := family(target)
	var out []string
	for _, d := range Catalog() {
		n, dv := family(d.Type)
		if n != name || dv >= v {
			continue
		}
		if _, ok := UpcastPath(d.Type, target); ok {
			out = append(out, d.Type)
		}
	}
	slices.SortFunc(out, func(a, b string) int { _, x := family(a); _, y := family(b); return x - y })
	return out
}

// CheckVersions returns an error naming every declared version of an event
// that has no upcaster path to the newest declared version: its events
// could not be read by the newest version's handlers. Start-up runs it.
func CheckVersions() error {
	newest := map[string]string{}
	for _, d := range Catalog() {
		name, v := family(d.Type)
		if cur, ok := newest[name]; !ok {
			newest[name] = d.Type
		} else if _, cv := family(cur); v > cv {
			newest[name] = d.Type
		}
	}
	var bad []string
	for _, d := range Catalog() {
		name, _ := family(d.Type)
		if n := newest[name]; n != d.Type {
			if _, ok := UpcastPath(d.Type, n); !ok {
				bad = append(bad, d.Type+" (newest "+n+")")
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("outbox: event versions with no upcaster path to the newest version: %s: register outbox.Upcast from each to the next", strings.Join(bad, ", "))
	}
	return nil
}
