package web

import (
	"net/http"
	"reflect"
	"sync"

	"github.com/labstack/echo/v4"
)

// Op documents one route of the API: what it takes and what it answers.
// The OpenAPI document (GET /openapi.json) is generated from it, and the
// route is registered with it in one call (Handle), so the two cannot drift:
// TestOpenAPICoversEveryRoute fails on a route under /api/v1 registered
// without one.
type Op struct {
	// Summary is one line saying what the route does.
	Summary string
	// Description adds what a client must know (optional).
	Description string
	// Request is a value of the body's Go type (signUpRequest{}); nil when
	// the route takes no body.
	Request any
	// Response is a value of the success answer's Go type; nil when it
	// answers with no content.
	Response any
	// Status is the success status (default 200; 204 when Response is nil).
	Status int
	// Stream: the success answer is a stream of Server-Sent Events
	// (text/event-stream) rather than one JSON document; Response is then
	// the Go type of each event's data, documented as x-event-data.
	Stream bool
	// Errors are the error statuses this route answers besides those every
	// route of its kind may: 500 always, 404 with a path parameter, 400, 413
	// and 415 with a body, 401 and 403 for an admin route.
	Errors []int
	// Query and Header are the parameters it reads.
	Query  []Param
	Header []Param
	// Admin: the route requires the admin token (Authorization: Bearer).
	Admin bool
}

// Param is a query or header parameter.
type Param struct {
	Name        string
	Description string
	// Type is a JSON Schema type: "string" (default), "integer", "boolean".
	Type     string
	Format   string // "date-time", "uuid", …
	Required bool
}

// router is what routes are added to: an *echo.Echo or an *echo.Group.
type router interface {
	Add(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route
}

// Handle registers h for method and path on r (a module's /api/v1 group),
// documented by op. It is a module's one call per route:
//
//	web.Handle(g, http.MethodPost, "/users", web.Op{
//		Summary: "Sign up", Request: signUpRequest{}, Response: userResponse{},
//		Status: http.StatusCreated, Errors: []int{http.StatusConflict},
//	}, m.handleUserCreate)
func Handle(r router, method, path string, op Op, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	route := r.Add(method, path, h, m...)
	if op.Status == 0 {
		op.Status = http.StatusOK
		if op.Response == nil {
			op.Status = http.StatusNoContent
		}
	}
	ops.Store(route.Method+" "+route.Path, documented{Op: op, request: typeOf(op.Request), response: typeOf(op.Response)})
	return route
}

// documented is an Op with its Go types, as the registry keeps it.
type documented struct {
	Op
	request, response reflect.Type
}

func typeOf(v any) reflect.Type {
	if v == nil {
		return nil
	}
	return reflect.TypeOf(v)
}

// ops are the documented routes of this process by "METHOD /full/path".
// Like the event catalog it is process-wide: every server built in the
// process registers the same routes with the same documentation, and a
// document is generated from the routes one server has (OpenAPI).
var ops sync.Map

func lookupOp(method, path string) (documented, bool) {
	v, ok := ops.Load(method + " " + path)
	if !ok {
		return documented{}, false
	}
	return v.(documented), true
}
