package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/testenv"
)

// One trace follows a sign-up from the caller through Cairn and on: the
// HTTP server span (child of the caller's), its statements, the creation
// of each event (whose context the event carries in traceparent), the
// mail consumer's process span continuing that context and linked to it,
// with messaging's attributes, its own statements, and the creation of
// the event it appends in turn. Log lines of the request carry the ids.
func TestOneTraceFollowsASignUpThroughItsEvents(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	db := testenv.MustDB(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = telemetry.PgxTracer{}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	a := testenv.StartApp(t, testenv.AppOptions{DB: &testenv.DB{Pool: pool, URL: db.URL, Name: db.Name}})

	_, client := tp.Tracer("test").Start(context.Background(), "client")
	r := a.API("POST", "/users", map[string]string{"username": "Ada", "email": "ada@example.com", "password": "correct horse battery"},
		"traceparent", outbox.TraceParentOf(client.SpanContext()))
	client.End()
	if r.Status != 201 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
	a.Drain()
	traceID := client.SpanContext().TraceID()
	var spans []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == traceID {
			spans = append(spans, s)
		}
	}
	one := func(what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		t.Helper()
		var found []sdktrace.ReadOnlySpan
		for _, s := range spans {
			if match(s) {
				found = append(found, s)
			}
		}
		if len(found) == 0 {
			var names []string
			for _, s := range spans {
				names = append(names, s.SpanKind().String()+" "+s.Name())
			}
			t.Fatalf("no span %s in the trace; it has:\n%s", what, strings.Join(names, "\n"))
		}
		return found[0]
	}
	named := func(name string, kind trace.SpanKind, parent trace.SpanID) func(sdktrace.ReadOnlySpan) bool {
		return func(s sdktrace.ReadOnlySpan) bool {
			return s.Name() == name && s.SpanKind() == kind && s.Parent().SpanID() == parent
		}
	}
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.String()
			}
		}
		return ""
	}
	wantAttrs := func(s sdktrace.ReadOnlySpan, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := attr(s, k); got != v {
				t.Errorf("span %s: %s = %q, want %q", s.Name(), k, got, v)
			}
		}
	}

	server := one("POST /api/v1/users (server, child of the caller)", named("POST /api/v1/users", trace.SpanKindServer, client.SpanContext().SpanID()))
	wantAttrs(server, map[string]string{"http.route": "/api/v1/users", "http.response.status_code": "201", "http.request.method": "POST"})
	insert := one("the sign-up's INSERT (client, child of the server span)", func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == server.SpanContext().SpanID() &&
			strings.Contains(attr(s, "db.query.text"), "INSERT INTO users.")
	})
	wantAttrs(insert, map[string]string{"db.system.name": "postgresql", "db.operation.name": "INSERT"})

	const request = "internal.users.activation_requested.v1"
	create := one("create "+request+" (producer, child of the server span)", named("create "+request, trace.SpanKindProducer, server.SpanContext().SpanID()))
	one("create events.users.account_created.v1", named("create events.users.account_created.v1", trace.SpanKindProducer, server.SpanContext().SpanID()))
	msgs := a.Stream(outbox.InternalStream).OfType("users.activation_requested.v1")
	if len(msgs) != 1 || msgs[0].TraceParent != outbox.TraceParentOf(create.SpanContext()) {
		t.Fatalf("the event's traceparent is not its creation context: %+v", msgs)
	}
	wantAttrs(create, map[string]string{"messaging.system": "nats", "messaging.destination.name": request,
		"messaging.message.id": msgs[0].ID, "messaging.operation.type": "create"})

	// The relay's publish: a producer span of its own, linked to the
	// creation context of the events it sent.
	var send sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		for _, l := range s.Links() {
			if s.Name() == "send "+outbox.InternalStream && s.SpanKind() == trace.SpanKindProducer && l.SpanContext.SpanID() == create.SpanContext().SpanID() {
				send = s
			}
		}
	}
	if send == nil {
		t.Fatalf("no span send %s linked to the event's creation context", outbox.InternalStream)
	}
	wantAttrs(send, map[string]string{"messaging.system": "nats", "messaging.destination.name": outbox.InternalStream, "messaging.operation.type": "send"})
	if got := msgs[0].Header.Get("Content-Type"); got != outbox.ContentType {
		t.Errorf("NATS Content-Type header %q, want %q", got, outbox.ContentType)
	}
	if got := msgs[0].Header["traceparent"]; len(got) != 1 || got[0] != msgs[0].TraceParent {
		t.Errorf("NATS traceparent header %q, want the event's %q", got, msgs[0].TraceParent)
	}

	process := one("process "+request+" (consumer, continuing the creation context)", named("process "+request, trace.SpanKindConsumer, create.SpanContext().SpanID()))
	wantAttrs(process, map[string]string{"messaging.system": "nats", "messaging.destination.name": request, "messaging.message.id": msgs[0].ID,
		"messaging.operation.type": "process", "messaging.consumer.group.name": "mail_activation_email"})
	if l := process.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != create.SpanContext().SpanID() {
		t.Errorf("the process span links to %+v, want the creation context", l)
	}
	one("the handler's statements (client, children of the process span)", func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == process.SpanContext().SpanID() &&
			strings.Contains(attr(s, "db.query.text"), "mail.messages")
	})
	const sent = "events.mail.activation_email_sent.v1"
	next := one("create "+sent+" (producer, child of the process span)", named("create "+sent, trace.SpanKindProducer, process.SpanContext().SpanID()))
	if m := a.Stream(outbox.PublicStream).OfType("mail.activation_email_sent.v1"); len(m) != 1 || m[0].TraceParent != outbox.TraceParentOf(next.SpanContext()) {
		t.Fatalf("the next event does not carry the trace on: %+v", m)
	}

	if !strings.Contains(a.Logs(), "trace_id="+traceID.String()+" span_id="+server.SpanContext().SpanID().String()) {
		t.Errorf("no log line carries the request's trace and span ids")
	}
}
