package telemetry

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// PgxTracer makes a client span for every statement and batch run with a
// context that carries a span (a request's, a handler's): the statement's
// text (with $n placeholders, never the values), its operation and its
// outcome. Statements outside any trace (the relay's polling, leases)
// make none, so they cannot flood the backend with root spans.
type PgxTracer struct{}

var _ interface {
	pgx.QueryTracer
	pgx.BatchTracer
} = PgxTracer{}

func tracer() trace.Tracer { return otel.Tracer("github.com/cairn-dev/cairn/telemetry") }

type pgxSpanKey struct{}

func (PgxTracer) start(ctx context.Context, name, sql string) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNamePostgreSQL}
	if sql != "" {
		attrs = append(attrs, semconv.DBQueryTextKey.String(sql), semconv.DBOperationNameKey.String(operation(sql)))
	}
	ctx, span := tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, pgxSpanKey{}, span)
}

func (PgxTracer) end(ctx context.Context, err error) {
	span, ok := ctx.Value(pgxSpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// TraceQueryStart starts a statement's span.
func (t PgxTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, operation(d.SQL), d.SQL)
}

// TraceQueryEnd ends it.
func (t PgxTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	t.end(ctx, d.Err)
}

// TraceBatchStart starts a batch's span; its statements are events on it.
func (t PgxTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	return t.start(ctx, "BATCH", "")
}

// TraceBatchQuery records one statement of a batch.
func (PgxTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if span, ok := ctx.Value(pgxSpanKey{}).(trace.Span); ok {
		span.AddEvent("statement", trace.WithAttributes(semconv.DBQueryTextKey.String(d.SQL)))
		if d.Err != nil {
			span.RecordError(d.Err)
		}
	}
}

// TraceBatchEnd ends a batch's span.
func (t PgxTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	t.end(ctx, d.Err)
}

// operation is the statement's first word: SELECT, INSERT, WITH, …
func operation(sql string) string {
	f := strings.Fields(sql)
	if len(f) == 0 {
		return "SQL"
	}
	return strings.ToUpper(f[0])
}
