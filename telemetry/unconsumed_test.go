package telemetry_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/testenv"
)

// happened is the event type of the bare consumer runtime below.
var happened = outbox.Declare[map[string]int](outbox.EventSpec{
	Type: "telemetrytest.happened.v1", Visibility: outbox.Public, Description: "A telemetry test event.",
})

// A consumer nobody can consume (its durable name is taken by a push
// consumer, which the runtime cannot pull from) is counted by
// cairn_consumers_unconsumed once nobody has consumed it for the runtime's
// FailingAfter, as /readyz reports it; once the cause is gone and it
// consumes again, the count is 0.
func TestMetricsCountConsumersNobodyConsumes(t *testing.T) {
	db, nt := testenv.MustDB(t), testenv.MustNATS(t)
	testenv.MustRelay(t, db, nt)
	ctx := context.Background()
	const name = "test_unconsumed"
	typ := happened.Name()
	if _, err := nt.JS.CreateOrUpdatePushConsumer(ctx, outbox.PublicStream, jetstream.ConsumerConfig{
		Durable: name, DeliverSubject: "elsewhere", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: outbox.Subject(typ, outbox.Public),
	}); err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	rt := consumer.New(db.Pool, nt.JS, []outbox.Subscription{{Consumer: name, EventType: typ,
		Handle: func(context.Context, pgx.Tx, outbox.Delivery) error {
			select {
			case handled <- struct{}{}:
			default:
			}
			return nil
		}}},
		consumer.Options{Logger: slog.New(slog.DiscardHandler), FailingAfter: 2 * time.Second, LeaseTTL: 2 * time.Second})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	m := telemetry.NewMetrics(telemetry.Sources{Consumers: rt}, telemetry.Options{Logger: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	hs := httptest.NewServer(mux)
	defer hs.Close()

	if s := mustScrape(t, hs.URL); s.get(t, "cairn_consumers_unconsumed") != 0 {
		t.Fatalf("counted unconsumed before FailingAfter passed: %v", s["cairn_consumers_unconsumed"])
	}
	waitScrape(t, hs.URL, "the consumer counted as unconsumed", func(s scrape) bool { return s["cairn_consumers_unconsumed"] == 1 })
	if err := rt.Ready(); err == nil {
		t.Error("/metrics counts a consumer /readyz does not report")
	}

	if err := nt.JS.DeleteConsumer(ctx, outbox.PublicStream, name); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(ctx, tx, outbox.Event{Type: typ, Key: "k", Data: map[string]int{"n": 1}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not handle an event once its durable was free")
	}
	waitScrape(t, hs.URL, "the count back at 0", func(s scrape) bool { return s["cairn_consumers_unconsumed"] == 0 })
}

// waitScrape scrapes base until ok holds, for at most 30 s.
func waitScrape(t *testing.T, base, what string, ok func(scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := mustScrape(t, base)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s; last scrape: %s", what, s.cairn())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cairn returns the scrape's cairn_ gauges that are not per consumer,
// route or pool, for a failure message.
func (s scrape) cairn() string {
	var out []string
	for k, v := range s {
		if strings.HasPrefix(k, "cairn_") && !strings.Contains(k, "consumer=") && !strings.Contains(k, "route=") && !strings.Contains(k, "pool=") && !strings.Contains(k, "_bucket") {
			out = append(out, fmt.Sprintf("%s %g", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
