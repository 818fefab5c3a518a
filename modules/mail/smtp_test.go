package mail_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cairn-dev/cairn/outbox"
)

func TestSMTPSendsTheActivationEmail(t *testing.T) {
	srv := mustSMTPD(t)
	f := newFixture(t, srv.URL())
	r := newRequest("ada", "ada@example.com")
	d := delivery(t, r)
	f.mustHandle(d)
	got := srv.Received()
	if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "ada@example.com" || got[0].From != "no-reply@localhost" {
		t.Fatalf("server received %+v", got)
	}
	m := parse(t, got[0].Data)
	link := "http://localhost:8080/activate?token=" + r.Token
	if m.Header.Get("Subject") != "Activate your Cairn account" || m.Header.Get("Message-Id") != "<"+d.Event.ID+"@localhost>" {
		t.Fatalf("headers %v", m.Header)
	}
	if !strings.Contains(m.Text, link) || !strings.Contains(m.Text, r.Token) || !strings.Contains(m.HTML, `href="`+link+`"`) {
		t.Fatalf("bodies lack the link:\n%s\n%s", m.Text, m.HTML)
	}
	if n := f.rows(d.Event.ID); n != 1 {
		t.Fatalf("%d rows recorded", n)
	}
	// The record of an email that went out keeps no working token.
	if n := f.Count(`SELECT count(*) FROM mail.messages WHERE strpos(text_body || html_body, $1) > 0`, r.Token); n != 0 {
		t.Fatal("mail.messages keeps the token of an email sent over SMTP")
	}
	// Handled again (the runtime's inbox lost, say): no second email.
	f.mustHandle(d)
	if n := len(srv.Received()); n != 1 {
		t.Fatalf("server received %d messages after a repeat", n)
	}
}

// With the server down the handler says so (outbox.Unavailable) and stores
// nothing; after three failures the breaker fails sends at once; once the
// server is back the breaker lets a trial through and the email goes out.
func TestSMTPOutageIsUnavailableAndTripsTheBreaker(t *testing.T) {
	srv := mustSMTPD(t)
	f := newFixture(t, srv.URL())
	f.mustHandle(delivery(t, newRequest("first", "first@example.com")))
	srv.Stop()

	d := delivery(t, newRequest("second", "second@example.com"))
	for i := 1; i <= 3; i++ {
		err := f.handle(d)
		if !outbox.IsUnavailable(err) || errors.Is(err, gobreaker.ErrOpenState) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("attempt %d with the server down: %v, want Unavailable (connection refused)", i, err)
		}
	}
	start := time.Now()
	err := f.handle(d)
	if !outbox.IsUnavailable(err) || !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("attempt 4: %v, want Unavailable because the breaker is open", err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Fatalf("an open breaker took %v to fail", took)
	}
	if n := f.rows(d.Event.ID); n != 0 {
		t.Fatalf("%d rows stored for an email that was not sent", n)
	}

	srv.Start()
	start = time.Now()
	for err = f.handle(d); err != nil; err = f.handle(d) {
		if !outbox.IsUnavailable(err) {
			t.Fatalf("after restart: %v", err)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("still failing %v after the server came back: %v", time.Since(start), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("sent again %v after the server came back", time.Since(start).Round(time.Millisecond))
	if n := srv.PerRecipient()["second@example.com"]; n != 1 {
		t.Fatalf("second@example.com received %d emails, want 1", n)
	}
	if n := f.rows(d.Event.ID); n != 1 {
		t.Fatalf("%d rows stored", n)
	}
}

// A 5xx to the message is its own problem: an ordinary error (retried, then
// a dead letter), and no reason to open the breaker. A 4xx says "later".
func TestSMTPRejectionIsAnOrdinaryError(t *testing.T) {
	srv := mustSMTPD(t)
	f := newFixture(t, srv.URL())
	srv.Reject(550)
	d := delivery(t, newRequest("gone", "gone@example.com"))
	for i := 1; i <= 5; i++ {
		err := f.handle(d)
		if err == nil || outbox.IsUnavailable(err) || !strings.Contains(err.Error(), "550") {
			t.Fatalf("attempt %d: %v, want an ordinary error with the 550", i, err)
		}
	}
	srv.Reject(451)
	if err := f.handle(d); !outbox.IsUnavailable(err) || !strings.Contains(err.Error(), "451") {
		t.Fatalf("451: %v, want Unavailable", err)
	}
	srv.Reject(0)
	f.mustHandle(d) // at once: the breaker stayed closed
	if n := len(srv.Received()); n != 1 || f.rows("") != 1 {
		t.Fatalf("server received %d, %d rows", n, f.rows(""))
	}
}

// A server that accepts the connection and never answers costs one
// timeout (10s), then the server counts as unavailable.
func TestSMTPSilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	f := newFixture(t, "smtp://"+l.Addr().String()+"?tls=none")
	start := time.Now()
	err = f.handle(delivery(t, newRequest("slow", "slow@example.com")))
	took := time.Since(start)
	if !outbox.IsUnavailable(err) || took > 12*time.Second {
		t.Fatalf("after %v: %v, want Unavailable within about 10s", took, err)
	}
	t.Logf("gave up after %v: %v", took.Round(time.Millisecond), err)
}
