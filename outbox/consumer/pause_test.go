package consumer_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

// An operator's pause, asked of a replica that does not hold the consumer,
// stops the one that does: events pile up in JetStream, unhandled, and
// every replica's status and backlog say so. Resumed, they are handled
// once each, in order. Counters count what happened.
func TestPauseOnOneReplicaHoldsTheConsumerEverywhere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := outbox.Subscription{Consumer: "test_pause", EventType: happened.Name(), Handle: record("test_pause")}
	opt := consumer.Options{Logger: slog.New(slog.DiscardHandler), LeaseTTL: 2 * time.Second}
	a := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{sub}, opt)
	b := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{sub}, opt)
	runUntilCleanup(t, a.Run)
	runUntilCleanup(t, b.Run)
	var holder, other *consumer.Runtime
	waitFor(t, 30*time.Second, "a replica to consume", func() bool {
		switch {
		case len(a.Active()) == 1 && a.Status()[0].State == consumer.Consuming:
			holder, other = a, b
		case len(b.Active()) == 1 && b.Status()[0].State == consumer.Consuming:
			holder, other = b, a
		}
		return holder != nil
	})
	e.publish(t, happened.Name(), keys(2), 1)
	waitFor(t, 30*time.Second, "the first events handled", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 2 })

	if err := other.Pause(ctx, "test_pause", "maintenance"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the holder to pause", func() bool {
		s := holder.Status()[0]
		return s.State == consumer.Paused && slices.Contains(s.Pauses, consumer.PausedByOperator)
	})
	e.publish(t, happened.Name(), keys(3), 2)
	waitFor(t, 30*time.Second, "six events waiting", func() bool {
		bl, err := other.Backlogs(ctx)
		return err == nil && bl[0].Pending+uint64(bl[0].AckPending) == 6 && !bl[0].OldestUnhandled.IsZero()
	})
	if n := e.count(t, `SELECT count(*) FROM effects`); n != 2 {
		t.Fatalf("paused, yet %d events handled", n)
	}
	if err := other.Pause(ctx, "no_such_consumer", ""); err != consumer.ErrConsumerNotFound {
		t.Fatalf("pause of an unknown consumer: %v", err)
	}

	if err := holder.Resume(ctx, "test_pause"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "everything handled", func() bool { return e.count(t, `SELECT count(*) FROM effects`) == 8 })
	got := e.effects(t, "test_pause")
	for _, k := range keys(2) {
		got[k] = got[k][1:] // the first round
	}
	inOrder(t, got, keys(3), 2)
	if c := holder.Status()[0].Counts; c.Handled != 8 || c.Failed != 0 || c.DeadLettered != 0 {
		t.Fatalf("counts %+v, want 8 handled", c)
	}
	waitFor(t, 10*time.Second, "the backlog to empty", func() bool {
		bl, err := other.Backlogs(ctx)
		return err == nil && bl[0].Pending == 0 && bl[0].AckPending == 0 && bl[0].Lag(time.Now()) == 0
	})
}
