// Package web is Cairn's HTTP surface: the echo server with its middleware
// and single error handler, health and readiness, and the operator console.
// Modules add their routes to the group they are given.
package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/cairn-dev/cairn/outbox"
)

// BodyLimit caps request bodies; larger ones get 413.
const BodyLimit = 1 << 20

// NewServer returns an echo instance with request ids, a body limit, panic
// recovery, request logging and the JSON error handler installed; a path
// parameter must be one whole path segment, or the answer is 404.
func NewServer(log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = ErrorHandler(log)
	e.JSONSerializer = plainJSON{}
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.IdleTimeout = 2 * time.Minute
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic in handler", "err", err, "path", c.Path(), "stack", string(stack))
			return err
		},
	}))
	e.Use(nosniff)
	e.Use(wholeSegmentParams)
	e.Use(methodOfStaticPath(e))
	e.Use(limitBody(BodyLimit))
	e.Use(causalContext)
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURI: true, LogMethod: true, LogLatency: true, LogRequestID: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			log.LogAttrs(c.Request().Context(), slog.LevelDebug, "request",
				slog.String("method", v.Method), slog.String("uri", v.URI), slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency), slog.String("request_id", v.RequestID))
			return nil
		},
	}))
	return e
}

// limitBody wraps the body in http.MaxBytesReader, so the decoder sees a
// typed error it can turn into 413 whatever the Content-Length claimed.
func limitBody(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "the body is larger than 1048576 bytes")
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			return next(c)
		}
	}
}

// causalContext stamps events appended while serving a request with the
// request id (correlation and causation) and the caller's trace context.
func causalContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Response().Header().Get(echo.HeaderXRequestID)
		r := c.Request()
		ctx := outbox.WithMetadata(r.Context(), outbox.Metadata{
			CorrelationID: id,
			CausationID:   id,
			TraceParent:   r.Header.Get("traceparent"),
		})
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// plainJSON is echo's JSON serializer without HTML escaping: a message that
// quotes "a > b" says so, not "a \u003e b". The escaping protects JSON
// pasted into HTML, which Cairn never does; responses carry
// X-Content-Type-Options: nosniff so no browser reads them as HTML.
type plainJSON struct{}

func (plainJSON) Serialize(c echo.Context, i any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}

func (plainJSON) Deserialize(c echo.Context, i any) error {
	err := json.NewDecoder(c.Request().Body).Decode(i)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("the body is not valid JSON: %v", err)).SetInternal(err)
	}
	return nil
}

func nosniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXContentTypeOptions, "nosniff")
		return next(c)
	}
}

// methodOfStaticPath answers 405 when the request's path is a route of its
// own for other methods but a parameter route of this method matched it:
// GET /api/v1/users/activate (a POST route) is routed by echo to GET
// /api/v1/users/:id with id "activate", and would answer 400 about a
// malformed id instead of saying the method is wrong. The routes are read
// once, at the first request, when every module has registered its own.
func methodOfStaticPath(e *echo.Echo) echo.MiddlewareFunc {
	methods := sync.OnceValue(func() map[string][]string {
		m := map[string][]string{}
		for _, r := range e.Routes() {
			if !strings.ContainsAny(r.Path, ":*") {
				m[r.Path] = append(m[r.Path], r.Method)
			}
		}
		return m
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !strings.Contains(c.Path(), ":") {
				return next(c)
			}
			allowed, ok := methods()[c.Request().URL.Path]
			if !ok || slices.Contains(allowed, c.Request().Method) {
				return next(c)
			}
			// As echo says it for a path it routes itself: OPTIONS first.
			allowed = append([]string{http.MethodOptions}, slices.Sorted(slices.Values(allowed))...)
			c.Response().Header().Set(echo.HeaderAllow, strings.Join(allowed, ", "))
			return echo.ErrMethodNotAllowed
		}
	}
}
