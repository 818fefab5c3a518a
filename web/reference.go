package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// onceDoc computes a document the first time it is asked for and keeps it.
func onceDoc(build func() (map[string]any, error)) func() (map[string]any, error) {
	var once sync.Once
	var doc map[string]any
	var err error
	return func() (map[string]any, error) {
		once.Do(func() { doc, err = build() })
		return doc, err
	}
}

//go:embed reference.html
var referenceHTML string

var referenceTmpl = template.Must(template.New("reference.html").Funcs(template.FuncMap{
	"json":   prettyJSON,
	"anchor": func(s string) string { return "schema-" + nameUnsafe.ReplaceAllString(s, "-") },
}).Parse(referenceHTML))

type refOperation struct {
	Method, Path, Summary, Description, ID string
	Admin                                  bool
	Params                                 []map[string]any
	Request                                any
	Responses                              []refResponse
}

type refResponse struct {
	Status, Description string
	Media               string // "" for application/json
	Schema              any
}

type refTag struct {
	Name string
	Ops  []refOperation
}

type refSchema struct {
	Name   string
	Schema any
}

// renderReference writes the API reference: every operation of doc, by
// tag, with its parameters, body and answers, and the schemas they name,
// rendered on the server (no script, nothing fetched from elsewhere).
func renderReference(c echo.Context, doc map[string]any) error {
	byTag := map[string][]refOperation{}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		for method, raw := range item.(map[string]any) {
			o := raw.(map[string]any)
			op := refOperation{Method: strings.ToUpper(method), Path: path, ID: str(o["operationId"]),
				Summary: str(o["summary"]), Description: str(o["description"]), Admin: o["security"] != nil}
			if ps, ok := o["parameters"].([]any); ok {
				for _, p := range ps {
					op.Params = append(op.Params, p.(map[string]any))
				}
			}
			if rb, ok := o["requestBody"].(map[string]any); ok {
				op.Request = rb["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
			}
			resps, _ := o["responses"].(map[string]any)
			for status, r := range resps {
				rr := refResponse{Status: status, Description: str(r.(map[string]any)["description"])}
				if content, ok := r.(map[string]any)["content"].(map[string]any); ok {
					if sse, ok := content[EventStream].(map[string]any); ok {
						rr.Media, rr.Schema = EventStream+", each event's data:", sse["x-event-data"]
					} else {
						rr.Schema = content["application/json"].(map[string]any)["schema"]
					}
				}
				op.Responses = append(op.Responses, rr)
			}
			sort.Slice(op.Responses, func(i, j int) bool { return op.Responses[i].Status < op.Responses[j].Status })
			tags, _ := o["tags"].([]string)
			tag := "other"
			if len(tags) > 0 {
				tag = tags[0]
			}
			byTag[tag] = append(byTag[tag], op)
		}
	}
	var tags []refTag
	for name, ops := range byTag {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return ops[i].Method < ops[j].Method
		})
		tags = append(tags, refTag{Name: name, Ops: ops})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Name < tags[j].Name })
	var schemas []refSchema
	if comps, ok := doc["components"].(map[string]any); ok {
		for name, s := range comps["schemas"].(map[string]any) {
			schemas = append(schemas, refSchema{Name: name, Schema: s})
		}
	}
	sort.Slice(schemas, func(i, j int) bool { return schemas[i].Name < schemas[j].Name })
	info, _ := doc["info"].(map[string]any)
	nonce, err := consoleNonce()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	err = referenceTmpl.Execute(&buf, map[string]any{"Info": info, "Tags": tags, "Schemas": schemas, "Nonce": nonce})
	if err != nil {
		return fmt.Errorf("render the API reference: %w", err)
	}
	securePage(c, nonce)
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}

// securePage sets the headers every HTML page of Cairn's gets: nothing
// cached, nothing loaded from elsewhere, inline style and script only with
// the page's nonce.
func securePage(c echo.Context, nonce string) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; "+
		"script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
		"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
