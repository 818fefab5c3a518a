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

	sub := outbox.Subscription{Consumer: name, EventType: "test.happened.v1", Handle: record(name)}
	stopB := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub}, opts))
	waitFor(t, 30*time.Second, "the second replica to handle 2 and 3", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 3 })
	waitFor(t, 10*time.Second, "every ack", func() bool { return e.durable(t, name).NumAckPending == 0 })
	stopB()

	stopC := start(consumer.New(e.db.Pool, e.ownJS(t), []outbox.Subscription{sub}, opts))
	defer stopC()
	e.publish(t, "test.happened.v1", []string{"k"}, 1) // n = 1 again: a new event
	waitFor(t, 30*time.Second, "the third replica to handle a new event", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 4 })
	if got := e.effects(t, name)["k"]; len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 1 {
		t.Fatalf("effects %v, want [1 2 3 1]", got)
	}
	after := e.durable(t, name)
	if !after.Created.Equal(created) {
		t.Fatalf("the durable was recreated (created %s, then %s): a crash in between would replay the stream", created, after.Created)
	}
	if after.Config.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Fatalf("deliver policy changed to %v", after.Config.DeliverPolicy)
	}
}
