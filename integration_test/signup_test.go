package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

var tokenInMail = regexp.MustCompile(`token=([A-Za-z0-9_-]{20,})`)

// mailboxToken waits for the activation email and reads the token from it.
func mailboxToken(t *testing.T, base, email string) string {
	t.Helper()
	var token string
	waitUntil(t, 30*time.Second, "the activation email in the mailbox", func() bool {
		var box struct {
			Messages []struct{ Text string }
		}
		if getJSON(t, base+"/api/v1/mail/messages?to="+url.QueryEscape(email), &box) != 200 || len(box.Messages) == 0 {
			return false
		}
		m := tokenInMail.FindStringSubmatch(box.Messages[0].Text)
		if m == nil {
			t.Fatalf("no token in the email:\n%s", box.Messages[0].Text)
		}
		token = m[1]
		return true
	})
	return token
}

// A user signs up, gets the activation email in the mailbox, activates with
// the token from it, and an external subscriber sees the three public
// events in order.
func TestSignUpActivateAsSubscriberSeesIt(t *testing.T) {
	db := testenv.MustDB(t)
	port := freePort(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":             db.URL,
		"CAIRN_NATS_LISTEN":              fmt.Sprintf("127.0.0.1:%d", port),
		"CAIRN_NATS_SUBSCRIBER_PASSWORD": "reader",
	})
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.UserInfo("subscriber", "reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("events.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()

	code, user := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "ada", "email": "Ada@Example.com", "password": "correct horse battery"})
	if code != 201 || user["status"] != "pending" {
		t.Fatalf("sign-up: %d %v", code, user)
	}
	id := user["id"].(string)
	if code, body := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "eve", "email": "ada@example.COM", "password": "another password"}); code != 409 {
		t.Fatalf("second sign-up with the same email: %d %v", code, body)
	}
	token := mailboxToken(t, p.HTTP, "ada@example.com")
	if code, body := postJSON(t, p.HTTP+"/api/v1/users/activate", map[string]string{"token": token}); code != 200 || body["status"] != "active" {
		t.Fatalf("activate: %d %v", code, body)
	}
	var got map[string]any
	if getJSON(t, p.HTTP+"/api/v1/users/"+id, &got); got["status"] != "active" {
		t.Fatalf("user after activation: %v", got)
	}

	want := []string{"events.users.account_created.v1", "events.mail.activation_email_sent.v1", "events.users.account_activated.v1"}
	var seen []string
	for len(seen) < len(want) {
		m, err := sub.NextMsg(15 * time.Second)
		if err != nil {
			t.Fatalf("subscriber saw %v, then: %v", seen, err)
		}
		var ev outbox.CloudEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Subject != id {
			t.Fatalf("event for another key: %s", m.Data)
		}
		if bytes.Contains(m.Data, []byte("correct horse")) || bytes.Contains(m.Data, []byte(token)) {
			t.Fatalf("a public event carries the password or the token: %s", m.Data)
		}
		seen = append(seen, m.Subject)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("subscriber saw %v, want %v", seen, want)
		}
	}
	if m, err := sub.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("unexpected extra event %s", m.Subject)
	}
}

// Cairn is killed with SIGKILL in the middle of sending activation emails,
// with handlers committed but not yet acked; after a restart every request
// has exactly one email and one inbox row.
func TestMailKilledMidwayExactlyOneEmailEach(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	env := externalEnv(db, nt)
	ctx := context.Background()
	// Cairn applies the migrations; then, with it stopped, a backlog of
	// activation requests is committed so the restart meets a burst.
	first := startCairn(t, env)
	if err := first.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	const n = 400
	for i := 0; i < n; i++ {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			_, err := outbox.Append(ctx, tx, users.EventActivationRequested.New(fmt.Sprintf("user-%d", i),
				users.ActivationRequested{UserID: fmt.Sprintf("user-%d", i), Username: "u", Email: fmt.Sprintf("u%d@example.com", i),
					Token: fmt.Sprintf("token-%d-abcdefghijklmnopqrstuvwxyz", i), ExpiresAt: time.Now().Add(time.Hour)}))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(sql string) int {
		var c int
		if err := db.Pool.QueryRow(ctx, sql).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	p := startCairn(t, env)
	waitUntil(t, 60*time.Second, "mail to be under way", func() bool { return count(`SELECT count(*) FROM mail.messages`) >= n/10 })
	p.Kill9()
	at := count(`SELECT count(*) FROM mail.messages`)
	t.Logf("killed with %d of %d emails recorded", at, n)
	if at >= n {
		t.Fatal("all mail was sent before the kill; the test proves nothing")
	}
	second := startCairn(t, env)
	took := waitUntil(t, 90*time.Second, "all emails", func() bool { return count(`SELECT count(*) FROM mail.messages`) >= n })
	t.Logf("the restarted process sent the rest in %s", took.Round(time.Millisecond))
	if line, ok := second.logs.find("resuming from the ack floor"); ok {
		t.Log(line)
	}
	time.Sleep(time.Second)
	if dup := count(`SELECT count(*) FROM (SELECT lower(to_address) FROM mail.messages GROUP BY 1 HAVING count(*) > 1) d`); dup != 0 {
		t.Fatalf("%d recipients got more than one email", dup)
	}
	if got := count(`SELECT count(*) FROM mail.messages`); got != n {
		t.Fatalf("%d emails, want %d", got, n)
	}
	if got := count(`SELECT count(*) FROM inbox.processed WHERE consumer = 'mail_activation_email'`); got != n {
		t.Fatalf("%d inbox rows, want %d", got, n)
	}
	waitUntil(t, 30*time.Second, "one activation_email_sent per request", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= n
	})
	time.Sleep(500 * time.Millisecond)
	if got := streamIDs(t, nt.JS, outbox.PublicStream); len(got) != n {
		t.Fatalf("EVENTS holds %d distinct events, want %d activation_email_sent", len(got), n)
	}
}
