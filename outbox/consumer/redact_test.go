package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
)

// tokenIssued carries a secret, as users.activation_requested.v1 does.
type tokenIssued struct {
	Email string `json:"email"`
	Token string `json:"token" cairn:"secret"`
}

var tokenIssuedEvent = outbox.Declare[tokenIssued](outbox.EventSpec{
	Type: "test.token_issued.v1", Visibility: outbox.Internal, Description: "A consumer test event with a secret.",
})

// An event that carries a secret and is parked keeps no secret in clear
// at rest: the dead letter's payload holds it sealed (outbox.Sealer), and
// the admin API lists outbox.Redacted, never the sealed value. A retry on
// a runtime with the key opens it, so the handler gets the real token and
// the dead letter can be re-driven once the outside fault is fixed. A
// runtime with another key (a replica or a restart without
// CAIRN_SECRET_KEY) hands the handler the redacted value, which it refuses
// as permanent. A dead letter written before sealing existed is sealed
// when a runtime starts.
func TestDeadLettersKeepNoSecret(t *testing.T) {
	e := newEnv(t)
	const token = "tok-3f9a1c-very-secret"
	var mu sync.Mutex
	var seen []string
	var mailServerBack atomic.Bool
	sub := outbox.Subscription{Consumer: "test_secretive", EventType: tokenIssuedEvent.Name(), Visibility: outbox.Internal, MaxAttempts: 2,
		MaxBackoff: 50 * time.Millisecond,
		Handle: func(ctx context.Context, tx pgx.Tx, d outbox.Delivery) error {
			var data tokenIssued
			if err := json.Unmarshal(d.Event.Data, &data); err != nil {
				return outbox.Permanent(err)
			}
			mu.Lock()
			seen = append(seen, data.Token)
			mu.Unlock()
			if data.Token == outbox.Redacted {
				return outbox.Permanent(errors.New("the token was redacted; it cannot be sent again"))
			}
			if !mailServerBack.Load() {
				return errors.New("the mail server refused it")
			}
			return nil
		}}
	key := outbox.NewSecretKey()
	rt := e.sealingRuntime(t, key, true, sub)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(ctx, tx, tokenIssuedEvent.New("k1", tokenIssued{Email: "a@example.com", Token: token}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a dead letter", func() bool { return e.count(t, `SELECT count(*) FROM inbox.dead_letters`) == 1 })
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0`, token); n != 0 {
		t.Fatal("the dead letter's payload holds the token")
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE convert_from(payload, 'UTF8')::jsonb->'data'->>'token' LIKE 'sealed:v1:%'`); n != 1 {
		t.Fatal("the dead letter's payload does not hold the token sealed, as a string")
	}

	srv := httptest.NewServer(adminServer(rt, "s3cret"))
	defer srv.Close()
	list := adminCall(t, srv.URL, "GET", "/dead-letters")
	if strings.Contains(list, token) || strings.Contains(list, outbox.SealedPrefix) ||
		!strings.Contains(list, `"token":"[redacted]"`) || !strings.Contains(list, `"email":"a@example.com"`) {
		t.Fatalf("the admin API lists %s", list)
	}
	var dl struct {
		DeadLetters []struct{ ID string } `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(list), &dl); err != nil || len(dl.DeadLetters) != 1 {
		t.Fatalf("list %s: %v", list, err)
	}
	id := dl.DeadLetters[0].ID

	// Another key cannot open it: the handler gets the redacted value.
	other := httptest.NewServer(adminServer(e.sealingRuntime(t, outbox.NewSecretKey(), false, sub), "s3cret"))
	defer other.Close()
	if retry := adminCall(t, other.URL, "POST", "/dead-letters/"+id+"/retry"); !strings.Contains(retry, "retry_failed") || !strings.Contains(retry, "redacted") {
		t.Fatalf("retry under another key: %s", retry)
	}
	// With the key, once the fault is fixed, it is re-driven with its token.
	mailServerBack.Store(true)
	if retry := adminCall(t, srv.URL, "POST", "/dead-letters/"+id+"/retry"); !strings.Contains(retry, `"status":"delivered"`) {
		t.Fatalf("retry with the key: %s", retry)
	}
	mu.Lock()
	if len(seen) != 4 || seen[0] != token || seen[1] != token || seen[2] != outbox.Redacted || seen[3] != token {
		t.Fatalf("the handler saw %q: the token twice, the redacted value under another key, then the token again", seen)
	}
	mu.Unlock()
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters`); n != 0 {
		t.Fatalf("%d dead letters left after a successful retry", n)
	}

	// A dead letter of the old kind, raw token in its payload.
	raw := `{"specversion":"1.0","id":"0193a0b2-7c4e-7000-8000-000000000001","type":"test.token_issued.v1","subject":"k2","data":{"email":"b@example.com","token":"` + token + `"}}`
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error)
		VALUES (gen_random_uuid(), 'test_secretive', '0193a0b2-7c4e-7000-8000-000000000001', 'test.token_issued.v1', 'internal.test.token_issued.v1', 'k2', $1, 1, 'x')`, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if list := adminCall(t, srv.URL, "GET", "/dead-letters"); strings.Contains(list, token) {
		t.Fatalf("the admin API lists an old dead letter's token: %s", list)
	}
	e.sealingRuntime(t, key, true, sub) // a replica starting
	waitFor(t, 10*time.Second, "old dead letters sealed at rest", func() bool {
		return e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0`, token) == 0
	})
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE convert_from(payload, 'UTF8')::jsonb->'data'->>'token' LIKE 'sealed:v1:%'`); n != 1 {
		t.Fatal("the old dead letter's token was not sealed")
	}
}

// sealingRuntime is a runtime sealing with key; run says whether it
// consumes (a runtime that only serves the admin API need not).
func (e *env) sealingRuntime(t *testing.T, key []byte, run bool, subs ...outbox.Subscription) *consumer.Runtime {
	t.Helper()
	s, err := outbox.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	rt := consumer.New(e.db.Pool, e.nt.JS, subs, consumer.Options{Logger: slog.New(slog.DiscardHandler), Sealer: s})
	if run {
		runUntilCleanup(t, rt.Run)
	}
	return rt
}

func adminCall(t *testing.T, base, method, path string) string {
	t.Helper()
	req, _ := http.NewRequest(method, base+"/api/v1/admin"+path, nil)
	req.Header.Set("Authorization", "bearer s3cret") // the scheme's case does not matter
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
