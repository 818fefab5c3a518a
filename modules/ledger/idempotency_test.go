package ledger_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/testenv"
)

// ageKey makes an idempotency key look as old as age.
func (a *app) ageKey(key string, age time.Duration) {
	a.t.Helper()
	tag, err := a.DB.Pool.Exec(context.Background(), `UPDATE ledger.idempotency_keys SET created_at = now() - $2::interval WHERE key = $1`, key, age)
	if err != nil || tag.RowsAffected() != 1 {
		a.t.Fatalf("age key %s: %v (%d rows)", key, err, tag.RowsAffected())
	}
}

// A key past its retention (24 h by default) is forgotten even before the
// sweep deletes it: the same request again is a new deposit, concurrent
// repeats of it make exactly one, and another body is no longer refused.
func TestExpiredKeyIsEvaluatedAfresh(t *testing.T) {
	a := newApp(t)
	id := a.open("EUR")
	deposit := func(amount int, key string) response {
		return a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": amount}, "Idempotency-Key", key)
	}
	first := deposit(100, "k-exp")
	if first.Status != 201 {
		t.Fatalf("first deposit: %d %s", first.Status, first.Raw)
	}
	a.ageKey("k-exp", 23*time.Hour)
	if r := deposit(100, "k-exp"); r.Header.Get("Idempotent-Replayed") != "true" || r.Raw != first.Raw {
		t.Fatalf("a key within its retention was not replayed: %d %v %s", r.Status, r.Header, r.Raw)
	}

	a.ageKey("k-exp", 25*time.Hour)
	var wg sync.WaitGroup
	answers := make(chan response, 10)
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); answers <- deposit(100, "k-exp") }()
	}
	wg.Wait()
	close(answers)
	var second string
	replays := 0
	for r := range answers {
		if r.Status != 201 {
			t.Fatalf("repeat after expiry: %d %s", r.Status, r.Raw)
		}
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replays++
		}
		if second == "" {
			second = r.Raw
		} else if r.Raw != second {
			t.Fatalf("concurrent repeats answered differently:\n%s\n%s", second, r.Raw)
		}
	}
	if second == first.Raw || replays != 9 {
		t.Fatalf("after expiry: %d of 10 replayed, answer %s (the first was %s); want one new deposit and 9 replays of it", replays, second, first.Raw)
	}
	if r := a.API("GET", "/accounts/"+id, nil); r.Body["balance"].(float64) != 200 || r.Body["version"].(float64) != 2 {
		t.Fatalf("account after the expired key's repeat: %s", r.Raw)
	}

	a.ageKey("k-exp", 25*time.Hour)
	if r := deposit(5, "k-exp"); r.Status != 201 || r.Body["balance"].(float64) != 205 {
		t.Fatalf("an expired key with another body: %d %s, want a new deposit", r.Status, r.Raw)
	}
	a.Drain()
	if evs := a.events(id); len(evs) != 4 {
		t.Fatalf("%d events for the account, want 4 (opened, three deposits)", len(evs))
	}
}

// The sweep deletes every expired key, in batches, and keeps fresh ones; a
// key a transaction holds is skipped rather than waited for. Run sweeps at
// start.
func TestSweepForgetsExpiredKeys(t *testing.T) {
	// The module alone, not the app: the app runs its sweep in the
	// background, and this test runs it by hand.
	db := testenv.MustDB(t)
	m, err := ledger.New(modules.Deps{Pool: db.Pool, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = db.Pool.Exec(ctx, `INSERT INTO ledger.idempotency_keys (key, request_hash, status, response, created_at)
		SELECT 'old-' || i, '\x00'::bytea, 201, '{}'::jsonb, now() - interval '25 hours' - i * interval '1 second' FROM generate_series(1, 2501) i
		UNION ALL
		SELECT 'new-' || i, '\x00', 201, '{}', now() - interval '23 hours' FROM generate_series(1, 3) i`)
	if err != nil {
		t.Fatal(err)
	}
	held, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(ctx)
	if _, err := held.Exec(ctx, `SELECT 1 FROM ledger.idempotency_keys WHERE key = 'old-7' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := m.ForgetExpiredKeys(sctx)
	if err != nil || n != 2500 {
		t.Fatalf("ForgetExpiredKeys = %d, %v; want 2500 (all expired keys but the held one)", n, err)
	}
	left := func() (old, fresh int) {
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE key LIKE 'old-%'), count(*) FILTER (WHERE key LIKE 'new-%') FROM ledger.idempotency_keys`).Scan(&old, &fresh)
		if err != nil {
			t.Fatal(err)
		}
		return old, fresh
	}
	if old, fresh := left(); old != 1 || fresh != 3 {
		t.Fatalf("after the sweep: %d expired and %d fresh keys, want 1 (held) and 3", old, fresh)
	}
	if err := held.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for old, _ := left(); old != 0; old, _ = left() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep the last expired key")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, fresh := left(); fresh != 3 {
		t.Fatalf("Run deleted fresh keys: %d left of 3", fresh)
	}
}
