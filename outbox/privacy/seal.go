package privacy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cairn-dev/cairn/outbox"
)

// An event's data as sealing and opening see it: a JSON object decoded
// with numbers kept as written.
type doc map[string]any

func decode(data json.RawMessage) (doc, error) {
	var d doc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("data is not a JSON object")
	}
	return d, nil
}

// at returns the value at a dotted path and the object holding it.
func (d doc) at(path string) (parent map[string]any, key string, v any, ok bool) {
	parts := strings.Split(path, ".")
	m := map[string]any(d)
	for _, p := range parts[:len(parts)-1] {
		inner, isObj := m[p].(map[string]any)
		if !isObj {
			return nil, "", nil, false
		}
		m = inner
	}
	key = parts[len(parts)-1]
	v, ok = m[key]
	return m, key, v, ok
}

// subjectOf is the person a personal field of an event belongs to: the
// value of its subject= field, or the event's key.
func (d doc) subjectOf(f outbox.Field, key string) string {
	if f.Subject == "" {
		return key
	}
	_, _, v, _ := d.at(f.Subject)
	s, _ := v.(string)
	return s
}

// Subjects returns the people whose personal data an event of eventType
// with this key and data holds (the fields' subjects, whether or not the
// fields are set), or nil for a type without personal fields.
func Subjects(eventType, key string, data json.RawMessage) []string {
	fields := outbox.PersonalFields(eventType)
	if len(fields) == 0 {
		return nil
	}
	d, err := decode(data)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range fields {
		if s := d.subjectOf(f, key); s != "" {
			out = append(out, s)
		}
	}
	return uniq(out)
}

func aad(eventID, path string) string { return eventID + "|" + path }

// Seal returns data with each personal field sealed with its person's key
// from keys, or null when the person is forgotten (or, lacking a key, has
// none: EnsureKeys first), and whether anything changed. Fields sealed
// already are left. Errors: data that is not a JSON object.
func Seal(eventType, eventID, key string, data json.RawMessage, keys Keys) (json.RawMessage, bool, error) {
	fields := outbox.PersonalFields(eventType)
	if len(fields) == 0 {
		return data, false, nil
	}
	d, err := decode(data)
	if err != nil {
		return nil, false, fmt.Errorf("privacy: seal %s %s: %w", eventType, eventID, err)
	}
	changed := false
	for _, f := range fields {
		parent, name, v, ok := d.at(f.Path)
		if !ok || v == nil {
			continue
		}
		if s, isStr := v.(string); isStr && outbox.IsSealed(s) {
			continue
		}
		k := keys[d.subjectOf(f, key)]
		if k == nil {
			parent[name], changed = nil, true
			continue
		}
		plain, err := json.Marshal(v)
		if err != nil {
			return nil, false, err
		}
		sealed, err := outbox.SealValue(k, plain, aad(eventID, f.Path))
		if err != nil {
			return nil, false, err
		}
		parent[name], changed = sealed, true
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(d)
	return out, true, err
}

// Open returns data with each sealed personal field opened with its
// person's key from keys, or null when the key is gone (forgotten), and
// whether anything changed. A value that is not sealed (written before
// sealing existed) is left as it is; so is one whose seal does not open
// (it was not made for this event and field): null is returned for it.
func Open(eventType, eventID, key string, data json.RawMessage, keys Keys) (json.RawMessage, bool, error) {
	fields := outbox.PersonalFields(eventType)
	if len(fields) == 0 || !bytes.Contains(data, []byte(outbox.PersonalSealedPrefix)) {
		return data, false, nil
	}
	d, err := decode(data)
	if err != nil {
		return nil, false, fmt.Errorf("privacy: open %s %s: %w", eventType, eventID, err)
	}
	changed := false
	for _, f := range fields {
		parent, name, v, ok := d.at(f.Path)
		s, isStr := v.(string)
		if !ok || !isStr || !outbox.IsSealed(s) {
			continue
		}
		changed = true
		k := keys[d.subjectOf(f, key)]
		if k == nil {
			parent[name] = nil
			continue
		}
		plain, err := outbox.OpenValue(k, s, aad(eventID, f.Path))
		if err != nil {
			parent[name] = nil
			continue
		}
		parent[name] = json.RawMessage(plain)
	}
	if !changed {
		return data, false, nil
	}
	out, err := json.Marshal(d)
	return out, true, err
}

// Scrub returns data with the personal fields of subject set to null, and
// whether any was set: what Forget leaves of an event it finds outside the
// lake (an outbox row, a dead letter).
func Scrub(eventType, key, subject string, data json.RawMessage) (json.RawMessage, bool) {
	fields := outbox.PersonalFields(eventType)
	if len(fields) == 0 {
		return data, false
	}
	d, err := decode(data)
	if err != nil {
		return data, false
	}
	changed := false
	for _, f := range fields {
		parent, name, v, ok := d.at(f.Path)
		if ok && v != nil && d.subjectOf(f, key) == subject {
			parent[name], changed = nil, true
		}
	}
	if !changed {
		return data, false
	}
	out, err := json.Marshal(d)
	if err != nil {
		return data, false
	}
	return out, true
}
