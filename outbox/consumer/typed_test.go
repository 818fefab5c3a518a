package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// An event whose data does not decode into the handler's type is parked at
// once, with the decode error, and never reaches the handler; the key's next
// event is handled after it. A handler's outbox.Permanent error parks at
// once too. Each dead letter shows one attempt, although five are allowed.
func TestUndecodableAndPermanentAreParkedAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var calls atomic.Int64
	subs := &outbox.Subscriptions{}
	err := outbox.Handle(subs, "test_typed", happened, func(ctx context.Context, tx pgx.Tx, ev outbox.Received[map[string]int]) error {
		calls.Add(1)
		if ev.Key == "refused" {
			return outbox.Permanent(errors.New("refused for good"))
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, key, n) VALUES ('test_typed', $1, $2, $3)`, ev.ID, ev.Key, ev.Data["n"])
		return err
	}, outbox.MaxAttempts(5), outbox.MaxBackoff(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e.runtime(t, subs.All()...)

	// An older producer's event, published as the relay would, whose n is
	// not a number; then a good event of the same key.
	id, _ := outbox.NewID()
	bad, _ := json.Marshal(outbox.CloudEvent{SpecVersion: "1.0", ID: id, Source: "/cairn/test", Type: happened.Name(),
		Subject: "mixed", Time: time.Now().UTC(), DataContentType: "application/json", Data: json.RawMessage(`{"n":"seven"}`)})
	if _, err := e.nt.JS.Publish(ctx, happened.Declared().Subject(), bad, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
	e.publish(t, happened.Name(), []string{"mixed", "refused"}, 1)

	waitFor(t, 30*time.Second, "the good event and two dead letters", func() bool {
		return e.count(t, `SELECT count(*) FROM effects`) == 1 && e.count(t, `SELECT count(*) FROM inbox.dead_letters`) == 2
	})
	if got := e.effects(t, "test_typed")["mixed"]; len(got) != 1 || got[0] != 1 {
		t.Fatalf("key mixed handled %v, want the good event once", got)
	}
	for _, c := range []struct{ key, err string }{
		{"mixed", `permanent: decode test.happened.v1 ` + id + ` as map[string]int: json: cannot unmarshal string`},
		{"refused", "permanent: refused for good"},
	} {
		var attempts int
		var lastErr string
		if err := e.db.Pool.QueryRow(ctx, `SELECT attempts, last_error FROM inbox.dead_letters WHERE event_key = $1`, c.key).Scan(&attempts, &lastErr); err != nil {
			t.Fatal(err)
		}
		if attempts != 1 || len(lastErr) < len(c.err) || lastErr[:len(c.err)] != c.err {
			t.Errorf("dead letter of %s: %d attempts, %q; want 1 attempt, %q…", c.key, attempts, lastErr, c.err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the handler ran %d times, want 2 (never for the undecodable event)", n)
	}
}
