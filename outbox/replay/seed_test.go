package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// A consumer added to a running system after 10,000 events, while about
// 500 events/s keep arriving, is seeded from the lake and then follows the
// live stream: every event exactly once, in per-key order. The first
// version of the module is replaced by one with the new consumer, on the
// same database and NATS, as a deploy would, after the stream's limits
// dropped the old messages.
func TestNewConsumerIsSeededFromTheLakeWhileWritersCommit(t *testing.T) {
	v1 := startReplayApp(t, testenv.AppOptions{Modules: append(app.Modules(), replaytestModule(false, 0))})
	w := newWriter(v1.DB.Pool, 40)
	if err := w.write(context.Background(), 10000, 500); err != nil {
		t.Fatal(err)
	}
	v1.Drain()
	w.keepWriting(5, 10*time.Millisecond) // about 500 events/s
	time.Sleep(200 * time.Millisecond)
	v1.Close()
	// The stream's limits dropped the old messages (all but the last
	// 2,000): only the lake has them.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := v1.NATS.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq-2000)); err != nil {
		t.Fatal(err)
	}

	v2 := startReplayApp(t, testenv.AppOptions{DB: v1.DB, NATS: v1.NATS, Modules: append(app.Modules(), replaytestModule(true, 0))})
	// The new consumer's durable exists once it is seeded (or, without
	// seeding, at once).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := v2.NATS.JS.Consumer(ctx, outbox.PublicStream, consumerSeeded); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new consumer's durable was never made")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // writers go on after the handoff
	total := w.Stop(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(v2.Logs())
		}
	})
	v2.Drain()
	seenReport(t, v2.Count, consumerSeeded, total)
	seenReport(t, v2.Count, consumerSeen, total)
}
