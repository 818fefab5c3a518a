package consumer_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// A consumer that cannot be consumed (here its durable name is taken by a
// push consumer, which the runtime cannot pull from: a wedge like the one
// after a second takeover) turns /readyz red, naming it, once nobody has
// consumed it for FailingAfter; the console's status says failing and why.
// When the cause is gone it consumes again and /readyz turns green.
func TestReadinessNamesAConsumerNobodyConsumes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.nt.JS.CreateOrUpdatePushConsumer(ctx, outbox.PublicStream, jetstream.ConsumerConfig{
		Durable: "test_ready", DeliverSubject: "elsewhere", AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubject: outbox.Subject("test.happened.v1", outbox.Public),
	}); err != nil {
		t.Fatal(err)
	}
	rt := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{{Consumer: "test_ready", EventType: "test.happened.v1", Handle: record("test_ready")}},
		consumer.Options{Logger: slog.New(slog.DiscardHandler), FailingAfter: 2 * time.Second, LeaseTTL: 2 * time.Second})
	runUntilCleanup(t, rt.Run)
	srv := echo.New()
	web.RegisterHealth(srv, []web.Checker{{Name: "consumers", Check: func(context.Context) error { return rt.Ready() }}}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	var resp testenv.Response
	waitFor(t, 30*time.Second, "/readyz to report the consumer", func() bool {
		resp = testenv.Do(t, "GET", hs.URL+"/readyz", nil)
		return resp.Status == 503
	})
	if !strings.Contains(resp.Raw, "consumer test_ready not consumed for") || !strings.Contains(resp.Raw, "pull consumer") {
		t.Fatalf("/readyz says %s", resp.Raw)
	}
	st := rt.Status()[0]
	if st.State != consumer.Failing || !strings.Contains(st.Reason, "pull consumer") || st.Unconsumed < 2*time.Second {
		t.Fatalf("status %+v, want failing with the reason", st)
	}

	if err := e.nt.JS.DeleteConsumer(ctx, outbox.PublicStream, "test_ready"); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "test.happened.v1", []string{"k"}, 1)
	waitFor(t, 30*time.Second, "the event to be handled", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 1 })
	waitFor(t, 10*time.Second, "/readyz to turn green", func() bool { return testenv.Do(t, "GET", hs.URL+"/readyz", nil).Status == 200 })
	waitFor(t, 10*time.Second, "the status to say consuming", func() bool {
		st := rt.Status()[0]
		return st.State == consumer.Consuming && st.Lease.Mine && st.Lease.Note == "consuming" && st.Unconsumed == 0
	})
}
