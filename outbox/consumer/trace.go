package consumer

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/outbox"
)

// processSpan starts the span of one attempt to handle an event: a
// consumer span "process <subject>" continuing the trace the event was
// created in (its traceparent) and linked to that creation context, with
// messaging's attributes. The handler's statements and the events it
// appends happen in it, so the trace goes on into the next event. With
// tracing off it is a no-op.
func processSpan(ctx context.Context, s outbox.Subscription, d outbox.Delivery) (context.Context, func(error)) {
	created := outbox.SpanContextOf(d.Event.TraceParent)
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationNameKey.String(d.Subject),
			semconv.MessagingMessageIDKey.String(d.Event.ID),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationNameKey.String("process"),
			semconv.MessagingConsumerGroupNameKey.String(s.Consumer),
			semconv.MessagingMessageConversationIDKey.String(d.Event.CorrelationID),
			attribute.Int("cairn.delivery.attempt", d.Attempt),
			attribute.String("cairn.event.type", d.Event.Type)),
	}
	if created.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, created)
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: created}))
	}
	ctx, span := otel.Tracer("github.com/cairn-dev/cairn/outbox/consumer").Start(ctx, "process "+d.Subject, opts...)
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
