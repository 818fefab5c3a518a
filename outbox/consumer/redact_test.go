package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/outbox"
)

// tokenIssued carries a secret, as users.activation_requested.v1 does.
type tokenIssued struct {
	Email string `json:"email"`
	Token string `json:"token" cairn:"secret"`
}

var tokenIssuedEvent = outbox.Declare[tokenIssued](outbox.EventSpec{
	Type: "test.token_issued.v1", Visibility: outbox.Internal, Description: "A consumer test event with a secret.",
})

// An event that carries a secret and is parked keeps no secret at rest:
// the dead letter's payload and the admin API's listing hold
// outbox.Redacted instead, and a retry hands the handler the redacted
// value (which it must refuse as permanent). A dead letter written before
// redaction existed is redacted when the runtime starts.
func TestDeadLettersKeepNoSecret(t *testing.T) {
	e := newEnv(t)
	const token = "tok-3f9a1c-very-secret"
	var mu sync.Mutex
	var seen []string
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
			return errors.New("the mail server refused it")
		}}
	rt := e.runtime(t, sub)
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
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0`, outbox.Redacted); n != 1 {
		t.Fatal("the dead letter's payload does not say what was redacted")
	}

	srv := httptest.NewServer(adminServer(rt, "s3cret"))
	defer srv.Close()
	list := adminCall(t, srv.URL, "GET", "/dead-letters")
	if strings.Contains(list, token) || !strings.Contains(list, `"email":"a@example.com"`) {
		t.Fatalf("the admin API lists %s", list)
	}
	var dl struct {
		DeadLetters []struct{ ID string } `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(list), &dl); err != nil || len(dl.DeadLetters) != 1 {
		t.Fatalf("list %s: %v", list, err)
	}
	retry := adminCall(t, srv.URL, "POST", "/dead-letters/"+dl.DeadLetters[0].ID+"/retry")
	if !strings.Contains(retry, "retry_failed") || !strings.Contains(retry, "redacted") {
		t.Fatalf("retry of a redacted dead letter: %s", retry)
	}
	mu.Lock()
	if len(seen) != 3 || seen[0] != token || seen[1] != token || seen[2] != outbox.Redacted {
		t.Fatalf("the handler saw %q: the token twice, then the redacted value", seen)
	}
	mu.Unlock()

	// A dead letter of the old kind, raw token in its payload.
	raw := `{"specversion":"1.0","id":"0193a0b2-7c4e-7000-8000-000000000001","type":"test.token_issued.v1","subject":"k2","data":{"email":"b@example.com","token":"` + token + `"}}`
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error)
		VALUES (gen_random_uuid(), 'test_secretive', '0193a0b2-7c4e-7000-8000-000000000001', 'test.token_issued.v1', 'internal.test.token_issued.v1', 'k2', $1, 1, 'x')`, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if list := adminCall(t, srv.URL, "GET", "/dead-letters"); strings.Contains(list, token) {
		t.Fatalf("the admin API lists an old dead letter's token: %s", list)
	}
	e.runtime(t, sub) // a replica starting
	waitFor(t, 10*time.Second, "old dead letters redacted at rest", func() bool {
		return e.count(t, `SELECT count(*) FROM inbox.dead_letters WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0`, token) == 0
	})
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
