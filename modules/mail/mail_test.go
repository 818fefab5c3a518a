package mail_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func TestNewDeclaresTheActivationSubscription(t *testing.T) {
	f := newFixture(t, "")
	s := f.sub
	if f.mail.Transport() != "mailbox" {
		t.Fatalf("Transport %q", f.mail.Transport())
	}
	if s.Consumer != "mail_activation_email" || s.EventType != "users.activation_requested.v1" ||
		s.Visibility != outbox.Internal || s.MaxAttempts != 5 || s.Handle == nil {
		t.Fatalf("subscription %+v", s)
	}
}

func TestMailboxStoresTheActivationEmail(t *testing.T) {
	f := newFixture(t, "")
	r := newRequest("ada", "Ada@Example.com")
	d := delivery(t, r)
	f.mustHandle(d)
	if n := f.rows(""); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	status, msgs, _ := f.mailbox("ada@EXAMPLE.com") // the address is matched ignoring case
	if status != 200 || len(msgs) != 1 {
		t.Fatalf("mailbox: %d, %d messages", status, len(msgs))
	}
	m := msgs[0]
	link := "http://localhost:8080/activate?token=" + url.QueryEscape(r.Token)
	if m.To != "Ada@Example.com" || m.Subject != "Activate your Cairn account" || m.EventID != d.Event.ID || m.ID == "" || m.SentAt.IsZero() {
		t.Fatalf("message %+v", m)
	}
	for _, want := range []string{"Hello ada,", link, "\n" + r.Token + "\n", "work until"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	for _, want := range []string{`<a href="` + link + `">`, "<code", r.Token, "Hello ada,"} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("html lacks %q:\n%s", want, m.HTML)
		}
	}
	if strings.Contains(m.Text, "/api/v1/users/activate") || strings.Contains(m.HTML, "/api/v1/users/activate") {
		t.Error("the email links to the POST-only API endpoint")
	}
	if status, msgs, _ := f.mailbox("someone-else@example.com"); status != 200 || len(msgs) != 0 {
		t.Fatalf("another address's mailbox: %d, %d messages", status, len(msgs))
	}
}

func TestSameEventTwiceStoresOneMessage(t *testing.T) {
	f := newFixture(t, "")
	r := newRequest("bob", "bob@example.com")
	d := delivery(t, r)
	f.mustHandle(d)
	f.mustHandle(d)
	d.Attempt = 2
	f.mustHandle(d)
	if n := f.rows(d.Event.ID); n != 1 {
		t.Fatalf("%d messages for one event, want 1", n)
	}
	// A new request (new event) for the same user is a new email, listed first.
	again := delivery(t, r)
	f.mustHandle(again)
	_, msgs, _ := f.mailbox("bob@example.com")
	if len(msgs) != 2 || msgs[0].EventID != again.Event.ID || msgs[1].EventID != d.Event.ID {
		t.Fatalf("mailbox %+v, want the two emails newest first", msgs)
	}
}

func TestHTMLEscapesTheUsername(t *testing.T) {
	f := newFixture(t, "")
	r := newRequest("<b>x</b>", "x@example.com")
	r.Token = `a+b/c=&"<>`
	f.mustHandle(delivery(t, r))
	_, msgs, _ := f.mailbox("x@example.com")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	html := msgs[0].HTML
	if strings.Contains(html, "<b>x</b>") || !strings.Contains(html, "Hello &lt;b&gt;x&lt;/b&gt;,") {
		t.Fatalf("username not escaped in html:\n%s", html)
	}
	if strings.Contains(html, `&"<>`) || !strings.Contains(html, "a&#43;b/c=&amp;&#34;&lt;&gt;") {
		t.Fatalf("token not escaped in html:\n%s", html)
	}
	if !strings.Contains(html, `href="http://localhost:8080/activate?token=a%2Bb%2Fc%3D%26%22%3C%3E"`) {
		t.Fatalf("link not query-escaped in html:\n%s", html)
	}
	if !strings.Contains(msgs[0].Text, "Hello <b>x</b>,") {
		t.Fatalf("text should carry the name as is:\n%s", msgs[0].Text)
	}
}

// A request that can never be sent is a permanent error: the runtime parks
// it at once instead of retrying.
func TestMalformedRequestIsPermanent(t *testing.T) {
	f := newFixture(t, "")
	r := newRequest("eve", "")
	err := f.handle(delivery(t, r))
	if !outbox.IsPermanent(err) || outbox.IsUnavailable(err) || !strings.Contains(err.Error(), "email") {
		t.Fatalf("handle: %v, want a permanent error naming the email", err)
	}
	d := delivery(t, r)
	d.Event.Data = []byte(`"not an object"`)
	if err := f.handle(d); !outbox.IsPermanent(err) || !strings.Contains(err.Error(), "decode") {
		t.Fatalf("handle: %v, want a permanent decode error", err)
	}
	if n := f.rows(""); n != 0 {
		t.Fatalf("%d messages stored", n)
	}
}

func TestMailboxRequiresTo(t *testing.T) {
	f := newFixture(t, "")
	status, _, e := f.mailbox("  ")
	if status != 400 || e.Error.Code != "validation_failed" || e.Error.Fields["to"] == "" {
		t.Fatalf("%d %+v", status, e)
	}
}

func TestMailboxIsOffInSMTPMode(t *testing.T) {
	f := newFixture(t, "smtp://127.0.0.1:1")
	if f.mail.Transport() != "smtp" {
		t.Fatalf("Transport %q", f.mail.Transport())
	}
	status, _, e := f.mailbox("ada@example.com")
	if status != 404 || e.Error.Code != "not_found" || !strings.Contains(e.Error.Message, "mailbox is off") {
		t.Fatalf("%d %+v", status, e)
	}
	if _, err := f.mail.Messages(context.Background(), "ada@example.com"); !errors.Is(err, mail.ErrMailboxOff) {
		t.Fatalf("Messages: %v", err)
	}
}

func TestNewRejectsUnusableSettings(t *testing.T) {
	db := testenv.MustDB(t)
	for _, smtpURL := range []string{
		"smtp://host:99999", "http://host:25", "smtp://host:25?from=not-an-address",
		"smtp://host:25?tls=off", "smtps://host:465?tls=none", "smtp://host:25?starttls=no",
	} {
		cfg := config.Default()
		cfg.SMTPURL = smtpURL
		if _, err := mail.New(modules.Deps{Pool: db.Pool, Config: cfg, Consumers: &outbox.Subscriptions{}}); err == nil {
			t.Errorf("New accepted CAIRN_SMTP_URL=%s", smtpURL)
		}
	}
	// Without a registry the handler is checked, not run: a test may
	// build the module alone.
	if _, err := mail.New(modules.Deps{Pool: db.Pool, Config: config.Default()}); err != nil {
		t.Errorf("New without Consumers: %v", err)
	}
}

// A dead letter retried reaches the handler with its token redacted (the
// consumer runtime parks events without their secrets): nothing is sent,
// and the error says why and what to do.
func TestRedactedTokenIsPermanent(t *testing.T) {
	srv := mustSMTPD(t)
	f := newFixture(t, srv.URL())
	r := newRequest("eve", "eve@example.com")
	r.Token = outbox.Redacted
	err := f.handle(delivery(t, r))
	if !outbox.IsPermanent(err) || !strings.Contains(err.Error(), "redacted") || !strings.Contains(err.Error(), "activation-emails") {
		t.Fatalf("handle: %v, want a permanent error saying the token was redacted and what to do", err)
	}
	if n := len(srv.Received()); n != 0 || f.rows("") != 0 {
		t.Fatalf("sent %d emails, stored %d rows", n, f.rows(""))
	}
}
