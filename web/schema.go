package web

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// Schemas turns Go types into JSON Schemas (draft 2020-12, which OpenAPI
// 3.1 and AsyncAPI's schema format both take), collecting named struct
// types as definitions that refs point at under Prefix
// ("#/components/schemas/"). Field names and which are required follow
// encoding/json: a field without omitempty is required, unknown fields are
// not allowed. A pointer, slice or map field without omitempty of a type
// reached from an answer (Nullable) may also be null, as encoding/json
// writes a nil one.
type Schemas struct {
	Prefix string
	Defs   map[string]any
	r      *jsonschema.Reflector
}

// NewSchemas returns an empty set whose refs start with prefix.
func NewSchemas(prefix string) *Schemas {
	s := &Schemas{Prefix: prefix, Defs: map[string]any{}}
	s.r = &jsonschema.Reflector{Namer: SchemaName, Mapper: mapKnown}
	return s
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SchemaName names a Go type in a document: its package and name,
// "users.userResponse", so two modules' types of one name stay apart.
func SchemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	name := t.Name()
	if pkg != "" {
		name = pkg + "." + name
	}
	return nameUnsafe.ReplaceAllString(name, "_")
}

// mapKnown gives the types invopop does not know the encoding of theirs.
func mapKnown(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[json.RawMessage]():
		return &jsonschema.Schema{Description: "Any JSON value."}
	case reflect.TypeFor[time.Duration]():
		return &jsonschema.Schema{Type: "integer", Description: "A duration in nanoseconds."}
	}
	return nil
}

// Of returns the schema of t: a ref to its definition for a named struct,
// the schema itself otherwise. nullable marks the fields that may be null
// (see Schemas).
func (s *Schemas) Of(t reflect.Type, nullable bool) (map[string]any, error) {
	raw, err := json.Marshal(s.r.ReflectFromType(t))
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	raw = []byte(strings.ReplaceAll(string(raw), `"#/$defs/`, `"`+s.Prefix))
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", t, err)
	}
	if defs, ok := root["$defs"].(map[string]any); ok {
		for name, d := range defs {
			s.Defs[name] = d
		}
	}
	delete(root, "$defs")
	delete(root, "$schema")
	delete(root, "$id")
	if nullable {
		s.markNullable(t, map[reflect.Type]bool{})
	}
	return root, nil
}

// markNullable walks the struct types reachable from t and lets each
// pointer, slice or map field without omitempty be null in its definition.
func (s *Schemas) markNullable(t reflect.Type, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeFor[time.Time]() {
		return
	}
	seen[t] = true
	def, _ := s.Defs[SchemaName(t)].(map[string]any)
	props, _ := def["properties"].(map[string]any)
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		s.markNullable(f.Type, seen)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || props == nil {
			continue
		}
		if name == "" {
			name = f.Name
		}
		k := f.Type.Kind()
		if (k != reflect.Pointer && k != reflect.Slice && k != reflect.Map) || strings.Contains(opts, "omitempty") ||
			f.Type == reflect.TypeFor[json.RawMessage]() {
			continue
		}
		if p, ok := props[name]; ok {
			props[name] = map[string]any{"anyOf": []any{p, map[string]any{"type": "null"}}}
		}
	}
}
