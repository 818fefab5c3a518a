package outbox

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted stands in for the value of a secret field (tagged
// cairn:"secret", an activation token) wherever Cairn keeps an event for
// operators rather than for its consumer: dead letters, logs, the admin
// API. A handler that receives it (a dead letter retried) must treat the
// event as one it can no longer act on (outbox.Permanent).
const Redacted = "[redacted]"

// RedactEvent returns a CloudEvents JSON document with the secret fields of
// its data replaced by Redacted, as the catalog declares them for its type,
// and whether anything was replaced. A document that is not a CloudEvent,
// or whose type the catalog does not know or has no secret field, comes
// back as it is. The data of a type with secret fields that cannot be read
// as a JSON object is replaced whole: what it holds cannot be told apart.
func RedactEvent(raw []byte) ([]byte, bool) {
	var env map[string]json.RawMessage
	if json.Unmarshal(raw, &env) != nil {
		return raw, false
	}
	var eventType string
	if json.Unmarshal(env["type"], &eventType) != nil {
		return raw, false
	}
	data, changed := RedactData(eventType, env["data"])
	if !changed {
		return raw, false
	}
	env["data"] = data
	out, err := json.Marshal(env)
	if err != nil {
		return raw, false
	}
	return out, true
}

// RedactData returns an event's JSON payload with the fields the catalog
// marks secret for eventType replaced by Redacted, and whether anything was
// replaced (see RedactEvent).
func RedactData(eventType string, data json.RawMessage) (json.RawMessage, bool) {
	d, ok := Lookup(eventType)
	if !ok {
		return data, false
	}
	var secret [][]string
	for _, f := range d.Fields {
		if f.Secret {
			secret = append(secret, strings.Split(f.Path, "."))
		}
	}
	if len(secret) == 0 || len(data) == 0 || string(data) == "null" {
		return data, false
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers stay as they were written
	if dec.Decode(&obj) != nil || obj == nil {
		whole, _ := json.Marshal(Redacted)
		return whole, true
	}
	changed := false
	for _, path := range secret {
		changed = redactPath(obj, path) || changed
	}
	if !changed {
		return data, false
	}
	out, err := json.Marshal(obj)
	if err != nil {
		whole, _ := json.Marshal(Redacted)
		return whole, true
	}
	return out, true
}

// redactPath replaces the value at path (object keys) if it is there and
// not already null or Redacted.
func redactPath(obj map[string]any, path []string) bool {
	v, ok := obj[path[0]]
	if !ok || v == nil {
		return false
	}
	if len(path) > 1 {
		inner, ok := v.(map[string]any)
		return ok && redactPath(inner, path[1:])
	}
	if v == Redacted {
		return false
	}
	obj[path[0]] = Redacted
	return true
}
