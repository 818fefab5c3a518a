package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

// While dead letters cannot be written, a key whose event is to be parked
// waits: its later events are not handled before it is parked, and other
// keys go on. Once the write succeeds, the key resumes in order. The lane
// used to move on, and the failed event came back after its ack wait,
// behind its successors.
func TestFailedParkHoldsItsKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `
CREATE TABLE park_broken (broken bool);
INSERT INTO park_broken VALUES (true);
CREATE FUNCTION refuse_park() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM park_broken) THEN RAISE EXCEPTION 'dead letters cannot be written'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_park BEFORE INSERT OR UPDATE ON inbox.dead_letters FOR EACH ROW EXECUTE FUNCTION refuse_park();`); err != nil {
		t.Fatal(err)
	}
	var poisonTries atomic.Int64
	sub := outbox.Subscription{Consumer: "test_park", EventType: "test.happened.v1", MaxAttempts: 2, MaxBackoff: 50 * time.Millisecond,
		Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
			var data struct{ N int }
			_ = json.Unmarshal(d.Event.Data, &data)
			if d.Event.Subject == "k" && data.N == 1 {
				poisonTries.Add(1)
				return errors.New("cannot handle the first event of k")
			}
			return record("test_park")(ctx, tx, d)
		}}
	rt := consumer.New(e.db.Pool, e.nt.JS, []outbox.Subscription{sub}, consumer.Options{Logger: slog.New(slog.DiscardHandler), AckWait: 2 * time.Second})
	runUntilCleanup(t, rt.Run)
	e.publish(t, "test.happened.v1", []string{"k", "other"}, 3)

	waitFor(t, 30*time.Second, "the other key", func() bool { return len(e.effects(t, "test_park")["other"]) == 3 })
	waitFor(t, 30*time.Second, "k's first event to use up its attempts", func() bool { return poisonTries.Load() >= 2 })
	time.Sleep(1500 * time.Millisecond) // room for k's later events to overtake it, if they can
	if got := e.effects(t, "test_park")["k"]; len(got) != 0 {
		t.Fatalf("k's later events %v were handled while its first event could not be parked", got)
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters`); n != 0 {
		t.Fatalf("%d dead letters written through a failing trigger", n)
	}

	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM park_broken`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "k's later events", func() bool { return len(e.effects(t, "test_park")["k"]) == 2 })
	if got := e.effects(t, "test_park")["k"]; got[0] != 2 || got[1] != 3 {
		t.Fatalf("k handled as %v, want [2 3]", got)
	}
	var parked time.Time
	var first time.Time
	if err := e.db.Pool.QueryRow(ctx, `SELECT failed_at FROM inbox.dead_letters`).Scan(&parked); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Pool.QueryRow(ctx, `SELECT processed_at FROM inbox.processed p JOIN effects f ON f.event_id = p.event_id::text
		WHERE f.key = 'k' AND f.n = 2`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if !parked.Before(first) {
		t.Fatalf("k's event 2 was handled at %s, before event 1 was parked at %s", first, parked)
	}
}
