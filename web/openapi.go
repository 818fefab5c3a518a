package web

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// APIPrefix is where the documented API lives.
const APIPrefix = "/api/v1"

// EventStream is the media type of a stream of Server-Sent Events (Op.Stream).
const EventStream = "text/event-stream"

// OpenAPI returns the OpenAPI 3.1 document of every route of e under
// /api/v1, generated from the Ops they were registered with (Handle), and
// the routes registered without one, which the document lists with
// x-undocumented so that the gap shows. Every error answer has the one error
// shape, ErrorBody. Errors: a Go type the schema generator cannot encode.
func OpenAPI(e *echo.Echo, version string) (map[string]any, []string, error) {
	s := NewSchemas("#/components/schemas/")
	errRef, err := s.Of(reflect.TypeFor[ErrorBody](), false)
	if err != nil {
		return nil, nil, err
	}
	paths := map[string]any{}
	var undocumented []string
	routes := e.Routes()
	sort.Slice(routes, func(i, j int) bool {
		if routes[i].Path != routes[j].Path {
			return routes[i].Path < routes[j].Path
		}
		return routes[i].Method < routes[j].Method
	})
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, APIPrefix+"/") || rt.Method == echo.RouteNotFound {
			continue
		}
		path, params := openAPIPath(rt.Path)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		op, ok := lookupOp(rt.Method, rt.Path)
		if !ok {
			undocumented = append(undocumented, rt.Method+" "+rt.Path)
			item[strings.ToLower(rt.Method)] = map[string]any{"x-undocumented": true, "responses": map[string]any{"default": map[string]any{"description": "not documented"}}}
			continue
		}
		o, err := openAPIOperation(s, rt, op, params, errRef)
		if err != nil {
			return nil, nil, err
		}
		item[strings.ToLower(rt.Method)] = o
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Cairn API",
			"version": version,
			"description": "Every route under /api/v1. Errors are always {\"error\":{\"code\",\"message\",\"fields\"?}}; " +
				"the X-Request-Id of an answer finds it in the logs.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": s.Defs,
			"securitySchemes": map[string]any{
				"admin": map[string]any{"type": "http", "scheme": "bearer", "description": "CAIRN_ADMIN_TOKEN"},
			},
		},
	}
	return doc, undocumented, nil
}

// openAPIPath turns /users/:id into /users/{id} and names its parameters.
func openAPIPath(p string) (string, []string) {
	segs := strings.Split(p, "/")
	var params []string
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
			params = append(params, name)
		}
	}
	return strings.Join(segs, "/"), params
}

func openAPIOperation(s *Schemas, rt *echo.Route, op documented, pathParams []string, errRef map[string]any) (map[string]any, error) {
	tag, _, _ := strings.Cut(strings.TrimPrefix(rt.Path, APIPrefix+"/"), "/")
	o := map[string]any{
		"operationId": operationID(rt.Method, rt.Path),
		"summary":     op.Summary,
		"tags":        []string{tag},
	}
	if op.Description != "" {
		o["description"] = op.Description
	}
	var params []any
	for _, name := range pathParams {
		params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, in := range []struct {
		where string
		ps    []Param
	}{{"query", op.Query}, {"header", op.Header}} {
		for _, p := range in.ps {
			schema := map[string]any{"type": "string"}
			if p.Type != "" {
				schema["type"] = p.Type
			}
			if p.Format != "" {
				schema["format"] = p.Format
			}
			q := map[string]any{"name": p.Name, "in": in.where, "required": p.Required, "schema": schema}
			if p.Description != "" {
				q["description"] = p.Description
			}
			params = append(params, q)
		}
	}
	if len(params) > 0 {
		o["parameters"] = params
	}
	if op.request != nil {
		schema, err := s.Of(op.request, false)
		if err != nil {
			return nil, err
		}
		o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": schema}}}
	}
	responses := map[string]any{}
	ok := map[string]any{"description": http.StatusText(op.Status)}
	if op.response != nil {
		schema, err := s.Of(op.response, true)
		if err != nil {
			return nil, err
		}
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": schema}}
		if op.Stream {
			// OpenAPI 3.1 cannot say what each event of a stream holds
			// (3.2's itemSchema can): the data's schema goes in an
			// extension, which the document's validators allow.
			ok["content"] = map[string]any{EventStream: map[string]any{
				"schema": map[string]any{"type": "string", "contentMediaType": EventStream,
					"description": "Server-Sent Events; the data of each is a JSON document of the schema in x-event-data"},
				"x-event-data": schema,
			}}
		}
	}
	responses[strconv.Itoa(op.Status)] = ok
	for _, status := range errorStatuses(op, len(pathParams) > 0) {
		responses[strconv.Itoa(status)] = map[string]any{
			"description": http.StatusText(status),
			"content":     map[string]any{"application/json": map[string]any{"schema": errRef}},
		}
	}
	o["responses"] = responses
	if op.Admin {
		o["security"] = []any{map[string]any{"admin": []any{}}}
	}
	return o, nil
}

// errorStatuses are the error answers of a route: its own and those every
// route of its kind may give.
func errorStatuses(op documented, pathParams bool) []int {
	set := map[int]bool{http.StatusInternalServerError: true}
	for _, s := range op.Errors {
		set[s] = true
	}
	if pathParams {
		set[http.StatusNotFound] = true
	}
	if op.request != nil {
		set[http.StatusBadRequest], set[http.StatusRequestEntityTooLarge], set[http.StatusUnsupportedMediaType] = true, true, true
	}
	if op.Admin {
		set[http.StatusUnauthorized], set[http.StatusForbidden] = true, true
	}
	out := make([]int, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

func operationID(method, path string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, seg := range strings.Split(strings.TrimPrefix(path, APIPrefix), "/") {
		seg = strings.TrimPrefix(seg, ":")
		for _, part := range strings.FieldsFunc(seg, func(r rune) bool { return r == '-' || r == '_' }) {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// RegisterOpenAPI serves the OpenAPI document of e on GET /openapi.json,
// generated once, when first asked (every route is registered by then),
// and the API reference rendered from it on GET /docs/api.
func RegisterOpenAPI(e *echo.Echo, version string) {
	doc := onceDoc(func() (map[string]any, error) {
		d, _, err := OpenAPI(e, version)
		return d, err
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		d, err := doc()
		if err != nil {
			return fmt.Errorf("openapi: %w", err)
		}
		return c.JSON(http.StatusOK, d)
	})
	e.GET("/docs/api", func(c echo.Context) error {
		d, err := doc()
		if err != nil {
			return fmt.Errorf("openapi: %w", err)
		}
		return renderReference(c, d)
	})
}
