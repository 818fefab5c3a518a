package consumer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

// A bulk retry acts on the dead letters it was confirmed on and no other,
// retries each key's events in order, and after one fails again skips the
// rest of its key (they would overtake it), reporting each result.
func TestBulkRetryKeepsEachKeysOrderAndItsConfirmedSet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	failAll, failOnly := true, map[string]bool{}
	handle := func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
		var data struct{ N int }
		if err := json.Unmarshal(d.Event.Data, &data); err != nil {
			return err
		}
		mu.Lock()
		fail := failAll || failOnly[fmt.Sprintf("%s#%d", d.Event.Subject, data.N)]
		mu.Unlock()
		if fail {
			return fmt.Errorf("refusing %s #%d", d.Event.Subject, data.N)
		}
		return record("test_bulk")(ctx, tx, d)
	}
	rt := e.runtime(t, outbox.Subscription{Consumer: "test_bulk", EventType: happened.Name(), Handle: handle, MaxAttempts: 1})
	e.publish(t, happened.Name(), []string{"ka"}, 3)
	e.publish(t, happened.Name(), []string{"kb"}, 2)
	waitFor(t, 30*time.Second, "five dead letters", func() bool { return e.count(t, `SELECT count(*) FROM inbox.dead_letters`) == 5 })

	ids, err := rt.DeadLetterIDs(ctx, consumer.DeadLetterFilter{Consumer: "test_bulk"}, 1000)
	if err != nil || len(ids) != 5 {
		t.Fatalf("confirmed %v, %v", ids, err)
	}
	mu.Lock()
	failAll, failOnly = false, map[string]bool{"ka#2": true, "kc#1": true}
	mu.Unlock()
	e.publish(t, happened.Name(), []string{"kc"}, 1) // parked after the confirmation
	waitFor(t, 30*time.Second, "the later dead letter", func() bool { return e.count(t, `SELECT count(*) FROM inbox.dead_letters`) == 6 })

	results, err := rt.RetryMany(ctx, append(ids, "0193a3b0-0000-7000-8000-000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	outcome := map[string]int{}
	for _, r := range results {
		outcome[r.Outcome]++
	}
	if len(results) != 6 || outcome[consumer.BulkDelivered] != 3 || outcome[consumer.BulkFailed] != 1 ||
		outcome[consumer.BulkSkipped] != 1 || outcome[consumer.BulkGone] != 1 {
		t.Fatalf("results %+v", results)
	}
	got := e.effects(t, "test_bulk")
	if fmt.Sprint(got["ka"]) != "[1]" || fmt.Sprint(got["kb"]) != "[1 2]" || len(got["kc"]) != 0 {
		t.Fatalf("effects %v: want ka [1] (2 failed, 3 skipped), kb [1 2], kc untouched", got)
	}
	left, total, err := rt.FindDeadLetters(ctx, consumer.DeadLetterFilter{Consumer: "test_bulk"}, 10)
	if err != nil || total != 3 {
		t.Fatalf("left %d dead letters, %v; want ka#2, ka#3 and kc#1", total, err)
	}
	if l, _, _ := rt.FindDeadLetters(ctx, consumer.DeadLetterFilter{Error: "REFUSING kc"}, 10); len(l) != 1 || l[0].Key != "kc" {
		t.Fatalf("filter by error: %+v", l)
	}

	discarded, err := rt.DiscardMany(ctx, []string{left[0].ID, left[0].ID})
	if err != nil || len(discarded) != 2 || discarded[0].Outcome != consumer.BulkDiscarded {
		t.Fatalf("discard: %+v %v", discarded, err)
	}
}
