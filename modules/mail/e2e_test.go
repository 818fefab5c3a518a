package mail_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// request commits one users.activation_requested.v1 for a new user, shaped
// by the users module's own type, and returns its event id.
func (e *fixture) request(email string) (eventID string) {
	e.t.Helper()
	ctx := context.Background()
	data := users.ActivationRequested{
		UserID: uuid.Must(uuid.NewV7()).String(), Username: "user " + email, Email: email,
		Token: "tok-" + uuid.NewString(), ExpiresAt: time.Now().Add(time.Hour).UTC(),
	}
	err := pgx.BeginFunc(ctx, e.DB.Pool, func(tx pgx.Tx) error {
		ev, err := outbox.Append(ctx, tx, users.EventActivationRequested.New(data.UserID, data))
		if err == nil {
			eventID = ev[0].ID
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return eventID
}

// waitRows waits until mail.messages holds n rows.
func (e *fixture) waitRows(n int, within time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for got := e.rows(""); got != n; got = e.rows("") {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d messages stored after %v, want %d", got, within, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sentEvents returns every mail.activation_email_sent.v1 published, once
// every request has been handled.
func (e *fixture) sentEvents() testenv.Messages {
	return e.Stream(outbox.PublicStream).OfType(mail.EventActivationEmailSent.Name())
}

// checkSent asserts one mail.activation_email_sent.v1 per request, caused
// by it, naming a stored message.
func (e *fixture) checkSent(requests map[string]string) {
	e.t.Helper()
	evs := e.sentEvents()
	if len(evs) != len(requests) {
		e.t.Fatalf("%d activation_email_sent events, want %d", len(evs), len(requests))
	}
	seen := map[string]bool{}
	for _, ce := range evs {
		var d mail.ActivationEmailSent
		if err := json.Unmarshal(ce.Data, &d); err != nil {
			e.t.Fatal(err)
		}
		to, ok := requests[ce.CausationID]
		if !ok || d.To != to || ce.Subject != d.UserID || d.UserID == "" || seen[d.MessageID] {
			e.t.Fatalf("event %+v data %+v: not one per request", ce, d)
		}
		seen[d.MessageID] = true
		var n int
		if err := e.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM mail.messages
			WHERE id = $1 AND event_id = $2 AND user_id = $3 AND to_address = $4`, d.MessageID, ce.CausationID, d.UserID, d.To).Scan(&n); err != nil || n != 1 {
			e.t.Fatalf("event %+v names no stored message (%d, %v)", d, n, err)
		}
	}
}

// Each request yields exactly one mailbox message and one
// mail.activation_email_sent.v1.
func TestEndToEndMailbox(t *testing.T) {
	e := newFixture(t, "")
	requests := map[string]string{} // event id -> address
	for i := range 50 {
		to := fmt.Sprintf("user%02d@example.com", i)
		requests[e.request(to)] = to
	}
	e.waitRows(len(requests), 30*time.Second)
	for id, to := range requests {
		status, msgs, _ := e.mailbox(to)
		if status != 200 || len(msgs) != 1 || msgs[0].EventID != id {
			t.Fatalf("mailbox of %s: %d %+v", to, status, msgs)
		}
	}
	e.checkSent(requests)
}

// The SMTP server refuses connections for a while (CAIRN_TEST_SMTP_OUTAGE,
// default 30s) as 200 requests come in; once it is back every email is
// delivered, none twice.
func TestEndToEndSMTPOutage(t *testing.T) {
	outage := 30 * time.Second
	if v := os.Getenv("CAIRN_TEST_SMTP_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CAIRN_TEST_SMTP_OUTAGE=%q: %v", v, err)
		}
		outage = d
	}
	srv := mustSMTPD(t)
	e := newFixture(t, srv.URL())
	requests := map[string]string{}
	requests[e.request("warm-up@example.com")] = "warm-up@example.com"
	e.waitRows(1, 30*time.Second)

	srv.Stop()
	down := time.Now()
	for i := range 200 {
		to := fmt.Sprintf("outage%03d@example.com", i)
		requests[e.request(to)] = to
		time.Sleep(outage / 2 / 200)
	}
	time.Sleep(time.Until(down.Add(outage)))
	if n := e.rows(""); n != 1 {
		t.Fatalf("%d messages recorded while the server was down, want 1", n)
	}
	srv.Start()
	up := time.Now()
	for deadline := up.Add(2 * time.Minute); len(srv.PerRecipient()) < len(requests); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d recipients got their email 2m after the server came back", len(srv.PerRecipient()), len(requests))
		}
	}
	t.Logf("all %d emails delivered %v after a %v outage", len(requests), time.Since(up).Round(time.Millisecond), outage)
	e.waitRows(len(requests), 30*time.Second)
	time.Sleep(2 * time.Second) // room for a duplicate to show up
	per := srv.PerRecipient()
	for _, to := range requests {
		if per[to] != 1 {
			t.Errorf("%s received %d emails, want 1", to, per[to])
		}
	}
	if n := len(srv.Received()); n != len(requests) {
		t.Errorf("server received %d messages, want %d", n, len(requests))
	}
	e.checkSent(requests)
}
