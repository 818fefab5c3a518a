// Package web is Cairn's HTTP surface: the echo server with its middleware
// and single error handler, health and readiness, and the operator console.
// Modules add their routes to the group they are given.
package web

import (
	"log/slog"
	"net/http"
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
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.IdleTimeout = 2 * time.Minute
	e.Use(middleware.RequestID())
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic in handler", "err", err, "path", c.Path(), "stack", string(stack))
			return err
		},
	}))
	e.Use(wholeSegmentParams)
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
