package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// Asking for a new activation email sends exactly one email per request,
// through the outbox and the mail consumer as at sign-up, even when NATS
// delivers every request again: once with the consumer's inbox intact, and
// once with the inbox forgotten, when only mail's record of sent events
// (by event id) stands between a redelivery and a second email. The new
// email's link works; the first one's no longer does.
func TestOneEmailPerResendUnderRedelivery(t *testing.T) {
	srv := mustSMTPD(t)
	a := testenv.StartApp(t, testenv.AppOptions{
		Modules: []modules.Definition{users.Definition, mail.Definition},
		Config:  func(c *config.Config) { c.SMTPURL = srv.URL() },
	})
	if r := a.API("POST", "/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse"}); r.Status != 201 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
	waitEmails(t, srv, 1)
	if r := a.API("POST", "/users/activation-emails", map[string]string{"email": "ada@example.com"}); r.Status != 202 {
		t.Fatalf("resend: %d %s", r.Status, r.Raw)
	}
	waitEmails(t, srv, 2)
	a.Drain()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	redeliverAll := func() {
		t.Helper()
		if _, err := a.NATS.JS.ResetConsumerToSequence(ctx, outbox.InternalStream, mail.Consumer, 1); err != nil {
			t.Fatalf("reset %s: %v", mail.Consumer, err)
		}
		a.Drain()
	}
	redeliverAll()
	tag, err := a.DB.Pool.Exec(ctx, `DELETE FROM inbox.processed WHERE consumer = $1`, mail.Consumer)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("forget the inbox: %v, %d rows", err, tag.RowsAffected())
	}
	redeliverAll()
	// The redelivered events did reach the handler (and were recorded
	// as handled again): the test exercised mail's own record.
	if n := a.Count(`SELECT count(*) FROM inbox.processed WHERE consumer = $1`, mail.Consumer); n != 2 {
		t.Fatalf("%d events handled again after the redelivery, want 2", n)
	}
	time.Sleep(time.Second) // room for a duplicate to arrive
	got := srv.Received()
	if len(got) != 2 {
		t.Fatalf("the SMTP server received %d emails for one sign-up and one request, want 2", len(got))
	}
	if sent := a.Stream(outbox.PublicStream).OfType(mail.EventActivationEmailSent.Name()); len(sent) != 2 {
		t.Fatalf("%d activation_email_sent events, want 2", len(sent))
	}
	first, second := tokenIn(t, got[0].Data), tokenIn(t, got[1].Data)
	if r := a.API("POST", "/users/activate", map[string]string{"token": first}); r.Status != 400 || r.ErrorCode() != "invalid_token" {
		t.Fatalf("the first email's token after a resend: %d %s", r.Status, r.Raw)
	}
	if r := a.API("POST", "/users/activate", map[string]string{"token": second}); r.Status != 200 {
		t.Fatalf("the second email's token: %d %s", r.Status, r.Raw)
	}
}

func waitEmails(t *testing.T, srv *smtpd, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(srv.Received()) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d emails after 30s, want %d", len(srv.Received()), n)
		}
	}
}

// tokenIn reads the activation token from an email's text part.
func tokenIn(t *testing.T, raw []byte) string {
	t.Helper()
	text := parse(t, raw).Text
	_, after, ok := strings.Cut(text, "/activate?token=")
	if !ok {
		t.Fatalf("no activation link in:\n%s", text)
	}
	token, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(token)
}
