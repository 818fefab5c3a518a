package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/errs"
)

// BindJSON decodes the request body into dst, a pointer to a struct,
// strictly: the body must be JSON (415 otherwise), valid UTF-8, one
// object, within the body limit (413). Every field that is unknown or of the
// wrong type is reported at once, in one 400 validation_failed naming each;
// the fields that decoded are set even then (FieldErrors lets a handler add
// its own checks of those to the same answer). Keys match field names as
// encoding/json's do.
func BindJSON(c echo.Context, dst any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the body must be JSON (Content-Type: application/json)")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return decodeError(err)
	}
	return bindBody(body, dst)
}

// FieldErrors returns the per-field messages of a validation error from
// BindJSON, or false when err is something else (a body that is not one
// JSON object, a wrong content type): then the handler has nothing to add.
func FieldErrors(err error) (map[string]string, bool) {
	var e *errs.Error
	if !errors.As(err, &e) || !errors.Is(err, errs.ErrValidation) || e.Fields["body"] != "" {
		return nil, false
	}
	return e.Fields, true
}

// loneSurrogate finds a \uD800–\uDFFF escape not paired as UTF-16:
// encoding/json would decode it to U+FFFD, silently changing the input.
var loneSurrogate = regexp.MustCompile(`\\u[dD][89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u[dD][c-fC-F][0-9a-fA-F]{2}`)

func bindBody(body []byte, dst any) error {
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return errs.Validation(map[string]string{"body": "is empty; want a JSON object"})
	case !utf8.Valid(body):
		return errs.Validation(map[string]string{"body": "is not valid UTF-8"})
	}
	for _, m := range loneSurrogate.FindAll(body, -1) {
		if len(m) == 6 { // a high surrogate without its low half, or a low one alone
			return errs.Validation(map[string]string{"body": "holds an unpaired UTF-16 surrogate escape (" + string(m) + "), which is not a character"})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var whole json.RawMessage
	if err := dec.Decode(&whole); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errs.Validation(map[string]string{"body": "must hold exactly one JSON object"})
	}
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return strictDecode(whole, dst)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(whole, &obj); err != nil || obj == nil {
		return errs.Validation(map[string]string{"body": "must be a JSON object"})
	}
	fields := structFields(v.Elem().Type())
	bad := map[string]string{}
	for key, raw := range obj {
		f, ok := fields.lookup(key)
		if !ok {
			bad[key] = "is not a known field"
			continue
		}
		target := v.Elem().FieldByIndex(f.index)
		val := reflect.New(target.Type())
		if err := strictDecode(raw, val.Interface()); err != nil {
			name, msg := fieldMessage(err, raw, target.Type())
			bad[joinField(key, name)] = msg
			continue
		}
		target.Set(val.Elem())
	}
	if len(bad) > 0 {
		return errs.Validation(bad)
	}
	return nil
}

// strictDecode decodes raw into dst refusing unknown fields of nested
// objects too.
func strictDecode(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	return nil
}

// fieldMessage says what is wrong with one field's value and, when the
// fault is inside a nested object, names the nested field ("quantity" of
// lines[].quantity) so the answer points at it.
func fieldMessage(err error, raw json.RawMessage, t reflect.Type) (nested, msg string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if m := numberRange(raw, t); m != "" {
		return "", m
	}
	var e *errs.Error
	if errors.As(err, &e) {
		for name, msg := range e.Fields {
			if name == "body" {
				return "", msg
			}
			return name, msg
		}
	}
	return "", "must be " + article(jsonKind(t.Kind().String()))
}

// joinField names a nested field by its path from the body: lines.quantity.
func joinField(key, nested string) string {
	if nested == "" {
		return key
	}
	return key + "." + nested
}

// numberRange explains a JSON number that a Go integer cannot hold: too
// large, too small, negative for an unsigned one, or not whole.
func numberRange(raw json.RawMessage, t reflect.Type) string {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	var lo, hi *big.Int
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := uint(t.Bits())
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
		lo = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), bits-1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(t.Bits())), big.NewInt(1))
		lo = big.NewInt(0)
	default:
		return ""
	}
	i, ok := new(big.Int).SetString(string(n), 10)
	if !ok {
		// 1.5, 1e3: a whole number is written without a fraction or exponent.
		return "must be a whole number"
	}
	switch {
	case i.Cmp(hi) > 0:
		return fmt.Sprintf("is too large: at most %s", hi)
	case i.Cmp(lo) < 0 && lo.Sign() == 0:
		return "must not be negative"
	case i.Cmp(lo) < 0:
		return fmt.Sprintf("is too small: at least %s", lo)
	}
	return ""
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit))
	case errors.Is(err, io.EOF):
		return errs.Validation(map[string]string{"body": "is empty; want a JSON object"})
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return errs.Validation(map[string]string{"body": "is not valid JSON"})
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return errs.Validation(map[string]string{field: "must be " + article(jsonKind(typeErr.Type.Kind().String()))})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errs.Validation(map[string]string{name: "is not a known field"})
	}
	return errs.Validation(map[string]string{"body": "could not be read as JSON"})
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "whole number"
	case strings.HasPrefix(goKind, "float"):
		return "number"
	case goKind == "string":
		return "string"
	case goKind == "bool":
		return "boolean"
	case goKind == "struct", goKind == "map":
		return "JSON object"
	case goKind == "slice", goKind == "array":
		return "JSON array"
	}
	return goKind
}

func article(noun string) string {
	if strings.ContainsAny(noun[:1], "aeiouAEIOU") {
		return "an " + noun
	}
	return "a " + noun
}

// boundField is one field of a request struct, by JSON name.
type boundField struct {
	name  string
	index []int
}

type boundFields []boundField

// lookup finds the field for a key as encoding/json does: an exact match
// first, then one that differs only in case.
func (fs boundFields) lookup(key string) (boundField, bool) {
	for _, f := range fs {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fs {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return boundField{}, false
}

// structFields lists the fields encoding/json would decode into, embedded
// structs without a JSON name flattened.
func structFields(t reflect.Type) boundFields {
	var out boundFields
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			for _, f := range structFields(sf.Type) {
				out = append(out, boundField{f.name, append([]int{i}, f.index...)})
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, boundField{name, []int{i}})
	}
	return out
}
