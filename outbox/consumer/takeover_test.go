package consumer_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

// ownJS is a NATS connection of its own, as another replica would have.
func (e *env) ownJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := e.nt.Server.Connect("replica", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (e *env) durable(t *testing.T, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := e.nt.JS.Consumer(context.Background(), outbox.PublicStream, name)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

// start runs rt until the returned stop is called.
func start(rt *consumer.Runtime) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	return func() { cancel(); <-done }
}

// Three replicas take one durable over in turn: the first crashes with
// messages unacked, the second takes over (resetting to the ack floor) and
// stops idle, the third must still consume. It used to be wedged for good:
// the second had recreated the durable with a start sequence, and the third
// asked NATS to change that back ("deliver policy can not be updated").
func TestThirdTakeoverIsNotWedged(t *testing.T) {
	e := newEnv(t)
	const name = "test_takeover"
	opts := consumer.Options{Logger: slog.New(slog.DiscardHandler), AckWait: 5 * time.Second, LeaseTTL: 2 * time.Second}
	var blocked atomic.Int64
	first := outbox.Subscription{Consumer: name, EventType: "test.happened.v1", Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
		var data struct{ N int }
		_ = json.Unmarshal(d.Event.Data, &data)
		if data.N >= 2 { // the crash comes while this one is in the handler
			blocked.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}
		return record(name)(ctx, tx, d)
	}}
	e.publish(t, "test.happened.v1", []string{"k"}, 3)

	stopA := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{first}, opts))
	waitFor(t, 30*time.Second, "the first replica to be stuck in event 2", func() bool { return blocked.Load() > 0 })
	stopA()
	info := e.durable(t, name)
	if info.NumAckPending == 0 {
		t.Fatal("the first replica left nothing unacked; the test proves nothing")
	}
	created := info.Created
	t.Logf("first replica gone with %d unacked", info.NumAckPending)
	// An event of k committed after the crash must still come after 2 and 3.
	appendN(t, e, "k", 4)

	sub := outbox.Subscription{Consumer: name, EventType: "test.happened.v1", Handle: record(name)}
	stopB := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub}, opts))
	waitFor(t, 30*time.Second, "the second replica to handle 2, 3 and 4", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 4 })
	waitFor(t, 10*time.Second, "every ack", func() bool { return e.durable(t, name).NumAckPending == 0 })
	stopB()

	stopC := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub}, opts))
	defer stopC()
	appendN(t, e, "k", 5)
	waitFor(t, 30*time.Second, "the third replica to handle a new event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 5 })
	inOrder(t, e.effects(t, name), []string{"k"}, 5)
	after := e.durable(t, name)
	if !after.Created.Equal(created) {
		t.Fatalf("the durable was recreated (created %s, then %s): a crash in between would replay the stream", created, after.Created)
	}
	if after.Config.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Fatalf("deliver policy changed to %v", after.Config.DeliverPolicy)
	}
}

// With a NATS server that cannot reset a consumer (older than 2.14), a new
// holder waits one ack wait before fetching, so the unacked messages come
// back first and a key's order holds: the event committed after the crash
// is handled after the ones the crashed holder left.
func TestTakeoverWithoutResetKeepsOrder(t *testing.T) {
	e := newEnv(t)
	const name = "test_noreset"
	opts := consumer.WithoutReset(consumer.Options{Logger: slog.New(slog.DiscardHandler), AckWait: 3 * time.Second, LeaseTTL: 2 * time.Second})
	var blocked atomic.Int64
	first := outbox.Subscription{Consumer: name, EventType: "test.happened.v1", Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
		var data struct{ N int }
		_ = json.Unmarshal(d.Event.Data, &data)
		if data.N >= 2 {
			blocked.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}
		return record(name)(ctx, tx, d)
	}}
	e.publish(t, "test.happened.v1", []string{"k"}, 3)
	stopA := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{first}, opts))
	waitFor(t, 30*time.Second, "the first replica to be stuck in event 2", func() bool { return blocked.Load() > 0 })
	stopA()
	if e.durable(t, name).NumAckPending == 0 {
		t.Fatal("nothing left unacked; the test proves nothing")
	}
	// A fourth event of k, committed after the crash: without the wait it
	// would be delivered before 2 and 3 come back.
	appendN(t, e, "k", 4)
	stopB := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{{Consumer: name, EventType: "test.happened.v1", Handle: record(name)}}, opts))
	defer stopB()
	waitFor(t, 30*time.Second, "every event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 4 })
	inOrder(t, e.effects(t, name), []string{"k"}, 4)
}

// appendN commits one event of key with data {"n": n}.
func appendN(t *testing.T, e *env, key string, n int) {
	t.Helper()
	ctx := context.Background()
	if err := pgx.BeginFunc(ctx, e.db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(ctx, tx, outbox.Event{Type: "test.happened.v1", Key: key, Data: map[string]int{"n": n}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
