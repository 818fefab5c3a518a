package app_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// mustJSON decodes a JSON document for the schema validator.
func mustJSON(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	return v
}

// mustMetaSchema compiles a schema vendored in testdata.
func mustMetaSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///"+file, mustJSON(t, raw)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///" + file)
	if err != nil {
		t.Fatalf("compile %s: %v", file, err)
	}
	return s
}

// docSchemas compiles schemas found inside a document (an OpenAPI or
// AsyncAPI document, or a JSON Schema) by JSON pointer, so their refs
// resolve within it.
type docSchemas struct {
	c   *jsonschema.Compiler
	url string
}

func newDocSchemas(t *testing.T, url string, raw []byte) *docSchemas {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(url, mustJSON(t, raw)); err != nil {
		t.Fatal(err)
	}
	return &docSchemas{c: c, url: url}
}

// validate checks doc against the schema at pointer ("/paths/~1users/…").
func (d *docSchemas) validate(t *testing.T, pointer string, doc []byte) error {
	t.Helper()
	s, err := d.c.Compile(d.url + "#" + pointer)
	if err != nil {
		t.Fatalf("compile %s: %v", pointer, err)
	}
	return s.Validate(mustJSON(t, doc))
}

// pointerEscape escapes one JSON pointer token.
func pointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
