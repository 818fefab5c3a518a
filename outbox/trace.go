package outbox

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// createSpan records an event's creation, as messaging's semantic
// conventions have it: a producer span "create <subject>" in the trace of
// ctx (the request's, or the handler's), ended at once. Its context is the
// event's creation context, carried in the traceparent extension, which the
// relay's publish span links to and the consumer's process span continues.
// Without a trace in ctx (or with tracing off) it returns "" and the event
// carries the traceparent of the metadata instead (the caller's header).
func createSpan(ctx context.Context, subject, id string) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	_, span := otel.Tracer("github.com/cairn-dev/cairn/outbox").Start(ctx, "create "+subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(semconv.MessagingSystemKey.String("nats"), semconv.MessagingDestinationNameKey.String(subject),
			semconv.MessagingMessageIDKey.String(id), semconv.MessagingOperationTypeCreate,
			semconv.MessagingOperationNameKey.String("create")))
	defer span.End()
	if !span.SpanContext().IsValid() {
		return ""
	}
	return TraceParentOf(span.SpanContext())
}

// TraceParentOf formats a span context as a W3C traceparent.
func TraceParentOf(sc trace.SpanContext) string {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// SpanContextOf parses a W3C traceparent (invalid if it is not one).
func SpanContextOf(traceParent string) trace.SpanContext {
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceParent})
	return trace.SpanContextFromContext(ctx)
}
