package outbox

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

var (
	timeType        = reflect.TypeFor[time.Time]()
	rawType         = reflect.TypeFor[json.RawMessage]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
)

// decodable reports why mine cannot decode the JSON that declared encodes
// to, or nil if it can. mine may read fewer fields than declared writes
// (consumers tolerate additions) but no field declared does not have, and
// each with a JSON type that decodes. Types with their own JSON methods are
// trusted.
func decodable(mine, declared reflect.Type, path string) error {
	for mine.Kind() == reflect.Pointer {
		mine = mine.Elem()
	}
	for declared.Kind() == reflect.Pointer {
		declared = declared.Elem()
	}
	at := func(format string, args ...any) error {
		where := "the payload"
		if path != "" {
			where = fmt.Sprintf("field %q", path)
		}
		return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	switch {
	case mine == declared, mine == rawType, mine.Kind() == reflect.Interface:
		return nil
	case mine == timeType:
		if declared != timeType {
			return at("this reads time.Time, the declared payload has %s", declared)
		}
		return nil
	case declared == timeType:
		if mine.Kind() != reflect.String {
			return at("the declared payload has time.Time (a JSON string), this reads %s", mine)
		}
		return nil
	case reflect.PointerTo(mine).Implements(jsonUnmarshaler),
		declared.Implements(jsonMarshaler), reflect.PointerTo(declared).Implements(jsonMarshaler),
		declared.Implements(textMarshaler):
		return nil
	}
	mk, dk := jsonKind(mine), jsonKind(declared)
	if mk != dk {
		return at("the declared payload has %s (JSON %s), this reads %s (JSON %s)", declared, dk, mine, mk)
	}
	switch mk {
	case "number":
		return numberFits(mine, declared, at)
	case "array":
		return decodable(mine.Elem(), declared.Elem(), path+"[]")
	case "object":
		return objectFits(mine, declared, path)
	}
	return nil
}

// jsonKind is the JSON type a Go type encodes to or decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // []byte is base64
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.Kind().String()
}

// numberFits refuses a number mine would truncate or overflow.
func numberFits(mine, declared reflect.Type, at func(string, ...any) error) error {
	isFloat := func(t reflect.Type) bool { return t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64 }
	isUnsigned := func(t reflect.Type) bool { return t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr }
	switch {
	case isFloat(mine):
		return nil
	case isFloat(declared):
		return at("the declared payload has %s, this reads %s: fractions would not decode", declared, mine)
	case isUnsigned(mine) && !isUnsigned(declared):
		return at("the declared payload has %s, this reads %s: negative numbers would not decode", declared, mine)
	case mine.Bits() < declared.Bits():
		return at("the declared payload has %s, this reads %s: large numbers would not decode", declared, mine)
	}
	return nil
}

// objectFits checks every field mine reads against declared.
func objectFits(mine, declared reflect.Type, path string) error {
	sub := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	if mine.Kind() == reflect.Map {
		if declared.Kind() == reflect.Map {
			return decodable(mine.Elem(), declared.Elem(), sub("*"))
		}
		for _, f := range jsonFields(declared) {
			if err := decodable(mine.Elem(), f.sf.Type, sub(f.name)); err != nil {
				return err
			}
		}
		return nil
	}
	if declared.Kind() == reflect.Map {
		for _, f := range jsonFields(mine) {
			if err := decodable(f.sf.Type, declared.Elem(), sub(f.name)); err != nil {
				return err
			}
		}
		return nil
	}
	theirs := jsonFields(declared)
	for _, f := range jsonFields(mine) {
		var match *jsonField
		for i, d := range theirs {
			if d.name == f.name || (match == nil && strings.EqualFold(d.name, f.name)) {
				match = &theirs[i]
			}
		}
		if match == nil {
			return fmt.Errorf("field %q is not in the declared payload", sub(f.name))
		}
		if err := decodable(f.sf.Type, match.sf.Type, sub(f.name)); err != nil {
			return err
		}
	}
	return nil
}
