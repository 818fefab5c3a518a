package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/modules/ledger"
)

// 100 concurrent withdrawals of 10 from 500: exactly 50 succeed, the balance
// ends at 0 and never went negative, versions have no gaps, and exactly 50
// withdrawn events reach NATS in version order.
func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	a := newApp(t)
	id := a.open("EUR")
	if r := a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 500}); r.Status != 201 {
		t.Fatalf("deposit: %d %s", r.Status, r.Raw)
	}
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.API("POST", "/accounts/"+id+"/withdrawals", map[string]any{"amount": 10})
			if r.Status == 422 && r.Body["error"].(map[string]any)["code"] != "insufficient_funds" {
				t.Errorf("422 with %s", r.Raw)
			}
			codes <- r.Status
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[201] != 50 || count[422] != 50 {
		t.Fatalf("statuses %v, want 50×201 and 50×422", count)
	}
	r := a.API("GET", "/accounts/"+id, nil)
	if r.Body["balance"].(float64) != 0 || r.Body["version"].(float64) != 51 {
		t.Fatalf("account after: %s", r.Raw)
	}
	h := a.API("GET", "/accounts/"+id+"/events?limit=1000", nil)
	evs := h.Body["events"].([]any)
	if len(evs) != 52 {
		t.Fatalf("history has %d entries, want 52 (open, deposit, 50 withdrawals)", len(evs))
	}
	for i, e := range evs {
		e := e.(map[string]any)
		if int(e["version"].(float64)) != i || e["balance"].(float64) < 0 {
			t.Fatalf("entry %d: %v", i, e)
		}
	}
	published := a.events(id)
	withdrawn := 0
	last := int64(-1)
	for _, ce := range published {
		var d ledger.Moved
		if err := json.Unmarshal(ce.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Version <= last {
			t.Fatalf("event version %d after %d", d.Version, last)
		}
		last = d.Version
		if ce.Type == ledger.EventWithdrawn.Name() {
			withdrawn++
			if d.Amount != 10 || d.Currency != "EUR" || d.Balance < 0 {
				t.Fatalf("bad withdrawn event %+v", d)
			}
		}
	}
	if withdrawn != 50 || len(published) != 52 {
		t.Fatalf("%d withdrawn of %d events on NATS, want 50 of 52", withdrawn, len(published))
	}
}

// The same deposit sent 20 times at once with one key: one event, one
// balance change, 20 identical answers. The key with another body: 422.
func TestIdempotentDeposit(t *testing.T) {
	a := newApp(t)
	id := a.open("USD")
	var wg sync.WaitGroup
	bodies := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 250}, "Idempotency-Key", "dep-1")
			if r.Status != 201 {
				t.Errorf("status %d: %s", r.Status, r.Raw)
			}
			bodies <- r.Raw
		}()
	}
	wg.Wait()
	close(bodies)
	first := ""
	for b := range bodies {
		if first == "" {
			first = b
		} else if b != first {
			t.Fatalf("replies differ:\n%s\n%s", first, b)
		}
	}
	r := a.API("GET", "/accounts/"+id, nil)
	if r.Body["balance"].(float64) != 250 || r.Body["version"].(float64) != 1 {
		t.Fatalf("account: %s", r.Raw)
	}
	if evs := a.events(id); len(evs) != 2 {
		t.Fatalf("%d events for the account, want 2 (opened, one deposit)", len(evs))
	}
	r = a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 999}, "Idempotency-Key", "dep-1")
	if r.Status != 422 || r.Body["error"].(map[string]any)["code"] != "idempotency_key_reused" {
		t.Fatalf("reused key: %d %s", r.Status, r.Raw)
	}
	r = a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 250}, "Idempotency-Key", "dep-1")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "true" || r.Raw != first {
		t.Fatalf("replay: %d %v %s", r.Status, r.Header, r.Raw)
	}
}

// A replay answers from the stored response without touching the account:
// while another transaction holds the account's row lock, it still returns
// at once, and a new deposit with a fresh key waits for the lock.
func TestReplayTakesNoAccountLock(t *testing.T) {
	a := newApp(t)
	id := a.open("EUR")
	first := a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 7}, "Idempotency-Key", "k-lock")
	if first.Status != 201 {
		t.Fatalf("first deposit: %d %s", first.Status, first.Raw)
	}
	ctx := context.Background()
	tx, err := a.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM ledger.accounts WHERE id = $1 FOR UPDATE`, id); err != nil {
		t.Fatal(err)
	}

	replayed := make(chan response, 1)
	go func() {
		replayed <- a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 7}, "Idempotency-Key", "k-lock")
	}()
	select {
	case r := <-replayed:
		if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "true" || r.Raw != first.Raw {
			t.Fatalf("replay: %d %v %s", r.Status, r.Header, r.Raw)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the replay waited on the account's row lock")
	}

	// The control: a new deposit does wait for the lock.
	fresh := make(chan response, 1)
	go func() {
		fresh <- a.API("POST", "/accounts/"+id+"/deposits", map[string]any{"amount": 1}, "Idempotency-Key", "k-new")
	}()
	select {
	case r := <-fresh:
		t.Fatalf("a new deposit finished while the account was locked: %d %s", r.Status, r.Raw)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-fresh; r.Status != 201 || r.Body["balance"].(float64) != 8 {
		t.Fatalf("new deposit after the lock: %d %s", r.Status, r.Raw)
	}
}

// as_of returns the balance of each moment; a rebuild from the log equals
// the projection, and repairs it when it was damaged.
func TestAsOfAndRebuild(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	id := a.open("GBP")
	type point struct {
		at      time.Time
		balance int64
		version int64
	}
	var points []point
	time.Sleep(5 * time.Millisecond)
	points = append(points, point{time.Now(), 0, 0})
	balance := int64(0)
	for i, amt := range []int64{100, 250, -75, 1000, -1275} {
		var err error
		if amt > 0 {
			_, _, err = a.ledger.Deposit(ctx, id, amt, "")
		} else {
			_, _, err = a.ledger.Withdraw(ctx, id, -amt, "")
		}
		if err != nil {
			t.Fatal(err)
		}
		balance += amt
		time.Sleep(5 * time.Millisecond)
		points = append(points, point{time.Now(), balance, int64(i + 1)})
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range points {
		r := a.API("GET", "/accounts/"+id+"?as_of="+p.at.UTC().Format(time.RFC3339Nano), nil)
		if r.Status != 200 || int64(r.Body["balance"].(float64)) != p.balance || int64(r.Body["version"].(float64)) != p.version {
			t.Fatalf("as_of %s: %d %s, want balance %d version %d", p.at, r.Status, r.Raw, p.balance, p.version)
		}
	}
	if r := a.API("GET", "/accounts/"+id+"?as_of=2001-01-01T00:00:00Z", nil); r.Status != 404 {
		t.Fatalf("as_of before opening: %d %s", r.Status, r.Raw)
	}
	other := a.open("GBP")
	for i := 0; i < 10; i++ {
		if _, _, err := a.ledger.Deposit(ctx, other, int64(i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := ledger.Rebuild(ctx, a.DB.Pool)
	if err != nil || rep.Accounts != 2 || rep.Corrected != 0 {
		t.Fatalf("rebuild of a healthy projection: %+v %v", rep, err)
	}
	if _, err := a.DB.Pool.Exec(ctx, `UPDATE ledger.accounts SET balance = 7, version = 3 WHERE id = $1`, other); err != nil {
		t.Fatal(err)
	}
	rep, err = ledger.Rebuild(ctx, a.DB.Pool)
	if err != nil || rep.Corrected != 1 {
		t.Fatalf("rebuild of a damaged projection: %+v %v", rep, err)
	}
	acc, err := a.ledger.Account(ctx, other)
	if err != nil || acc.Balance != 55 || acc.Version != 10 {
		t.Fatalf("after rebuild: %+v %v", acc, err)
	}
}

// Bad input answers 400 (or 404/413/415/422) with the JSON error shape and
// writes nothing.
func TestBadInput(t *testing.T) {
	a := newApp(t)
	id := a.open("EUR")
	dep := "/accounts/" + id + "/deposits"
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code, field        string
	}{
		{"negative", "POST", dep, `{"amount":-5}`, 400, "validation_failed", "amount"},
		{"zero", "POST", dep, `{"amount":0}`, 400, "validation_failed", "amount"},
		{"huge", "POST", dep, `{"amount":99999999999999999999}`, 400, "validation_failed", "amount"},
		{"above max", "POST", dep, fmt.Sprintf(`{"amount":%d}`, ledger.MaxAmount+1), 400, "validation_failed", "amount"},
		{"fractional", "POST", dep, `{"amount":10.5}`, 400, "validation_failed", "amount"},
		{"string", "POST", dep, `{"amount":"10"}`, 400, "validation_failed", "amount"},
		{"missing", "POST", dep, `{}`, 400, "validation_failed", "amount"},
		{"unknown field", "POST", dep, `{"amount":1,"memo":"x"}`, 400, "validation_failed", "memo"},
		{"malformed json", "POST", dep, `{"amount":`, 400, "validation_failed", "body"},
		{"unknown currency", "POST", "/accounts", `{"owner":"a","currency":"XXX"}`, 400, "validation_failed", "currency"},
		{"lower-case currency", "POST", "/accounts", `{"owner":"a","currency":"eur"}`, 400, "validation_failed", "currency"},
		{"blank owner", "POST", "/accounts", `{"owner":"  ","currency":"EUR"}`, 400, "validation_failed", "owner"},
		{"malformed id", "POST", "/accounts/not-a-uuid/deposits", `{"amount":1}`, 400, "validation_failed", "id"},
		{"malformed id get", "GET", "/accounts/123", nil, 400, "validation_failed", "id"},
		{"unknown account", "POST", "/accounts/0193a0b2-7c4e-7000-8000-000000000000/deposits", `{"amount":1}`, 404, "not_found", ""},
		{"bad as_of", "GET", "/accounts/" + id + "?as_of=yesterday", nil, 400, "validation_failed", "as_of"},
		{"bad limit", "GET", "/accounts/" + id + "/events?limit=0", nil, 400, "validation_failed", "limit"},
		{"insufficient", "POST", "/accounts/" + id + "/withdrawals", `{"amount":1}`, 422, "insufficient_funds", ""},
	}
	for _, c := range cases {
		r := a.API(c.method, c.path, c.body)
		e, _ := r.Body["error"].(map[string]any)
		if r.Status != c.status || e == nil || e["code"] != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Raw, c.status, c.code)
			continue
		}
		if c.field != "" {
			if f, _ := e["fields"].(map[string]any); f[c.field] == nil {
				t.Errorf("%s: no message for field %q in %s", c.name, c.field, r.Raw)
			}
		}
	}
	// Not JSON, too large.
	req := a.API("POST", dep, nil)
	if req.Status != 415 {
		t.Errorf("no body/content type: %d %s", req.Status, req.Raw)
	}
	big := `{"amount":1,"pad":"` + strings.Repeat("0", 2<<20) + `"}`
	if r := a.API("POST", dep, big); r.Status != 413 || r.Body["error"].(map[string]any)["code"] != "payload_too_large" {
		t.Errorf("large body: %d %.200s", r.Status, r.Raw)
	}
	r := a.API("GET", "/accounts/"+id, nil)
	if r.Body["balance"].(float64) != 0 || r.Body["version"].(float64) != 0 {
		t.Fatalf("bad input changed the account: %s", r.Raw)
	}
}
