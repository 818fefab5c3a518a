package relay

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/outbox"
)

// maxLinks bounds the links of one send span: the SDK keeps 128 by default.
const maxLinks = 128

// traceSend records a round's publish as messaging's conventions have it:
// a producer span "send <stream>" per stream, linked to the creation
// context of the events it carries (their traceparent). With tracing off
// the span does not record and nothing is parsed.
func traceSend(rd *round) {
	byStream := map[string][]row{}
	var order []string
	for _, m := range rd.msgs {
		s := streamOf(m.subject)
		if _, ok := byStream[s]; !ok {
			order = append(order, s)
		}
		byStream[s] = append(byStream[s], m)
	}
	tracer := otel.Tracer("github.com/cairn-dev/cairn/outbox/relay")
	for _, s := range order {
		msgs := byStream[s]
		_, span := tracer.Start(context.Background(), "send "+s, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithTimestamp(rd.sent),
			trace.WithAttributes(semconv.MessagingSystemKey.String("nats"), semconv.MessagingDestinationNameKey.String(s),
				semconv.MessagingOperationNameKey.String("send"), semconv.MessagingOperationTypeSend,
				semconv.MessagingBatchMessageCount(len(msgs))))
		if span.IsRecording() {
			for i, m := range msgs {
				if i == maxLinks {
					break
				}
				if sc := outbox.SpanContextOf(traceParent(m.payload)); sc.IsValid() {
					span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{semconv.MessagingMessageIDKey.String(m.id)}})
				}
			}
		}
		span.End()
	}
}
