package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TraceHTTP makes a server span for every request e serves, continuing the
// caller's trace (its traceparent header), named for the route pattern
// ("POST /api/v1/users"), with the route and status. Everything the
// request does (statements, appended events) happens in it. With tracing
// off (the default) the span is a no-op.
func TraceHTTP(e *echo.Echo) {
	tr := otel.Tracer("github.com/cairn-dev/cairn/web")
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tr.Start(ctx, knownMethod(r.Method), trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(knownMethod(r.Method)), semconv.URLPathKey.String(r.URL.Path)))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			span.SetName(routeLabel(c))
			if c.Path() != "" {
				span.SetAttributes(semconv.HTTPRouteKey.String(c.Path()))
			}
			span.SetAttributes(semconv.HTTPResponseStatusCodeKey.Int(status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	})
}
