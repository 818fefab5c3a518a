package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/testenv"
)

// refusingSMTP is an SMTP server in the test that refuses every recipient
// with 550 until told to accept, and keeps what it accepted.
type refusingSMTP struct {
	addr   string
	accept atomic.Bool
	mu     sync.Mutex
	got    []string
}

func startRefusingSMTP(t *testing.T) *refusingSMTP {
	t.Helper()
	s := &refusingSMTP{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &refusingSession{s: s}, nil }))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

func (s *refusingSMTP) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

type refusingSession struct{ s *refusingSMTP }

func (x *refusingSession) Reset()                               {}
func (x *refusingSession) Logout() error                        { return nil }
func (x *refusingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (x *refusingSession) Rcpt(string, *smtp.RcptOptions) error {
	if !x.s.accept.Load() {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox today"}
	}
	return nil
}
func (x *refusingSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	x.s.mu.Lock()
	x.s.got = append(x.s.got, string(b))
	x.s.mu.Unlock()
	return err
}

// An activation email the SMTP server keeps refusing ends as a dead letter.
// Nothing Cairn keeps for operators holds its token: not the dead letter,
// not the admin API, not the log, not the record of sent mail; INTERNAL
// keeps the event 25 hours, an hour past the token's life. Retrying the
// dead letter cannot send a token that is gone: 409 saying so. The way
// back is a new activation email, whose token works.
func TestActivationTokenIsNotKeptForOperators(t *testing.T) {
	srv := startRefusingSMTP(t)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.SMTPURL = "smtp://" + srv.addr + "?tls=none" // plain SMTP on loopback, said explicitly
		c.AdminToken = "admin-secret"
	}})
	r := a.API("POST", "/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse"})
	if r.Status != 201 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	waitUntil(t, 60*time.Second, "the refused email parked as a dead letter", func() bool {
		return a.Count(`SELECT count(*) FROM inbox.dead_letters WHERE consumer = $1`, mail.Consumer) == 1
	})
	var token string
	for _, m := range a.Stream(outbox.InternalStream).OfKey(id) {
		var d users.ActivationRequested
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatal(err)
		}
		token = d.Token
	}
	if len(token) != 43 {
		t.Fatalf("no token in INTERNAL (%q)", token)
	}

	auth := []string{"Authorization", "Bearer admin-secret"}
	list := a.API("GET", "/admin/dead-letters", nil, auth...)
	if list.Status != 200 || !strings.Contains(list.Raw, id) {
		t.Fatalf("dead letters: %d %s", list.Status, list.Raw)
	}
	for where, text := range map[string]string{
		"the admin API": list.Raw,
		"the log":       a.Logs(),
		"the dead letter": func() string {
			var b []byte
			if err := a.DB.Pool.QueryRow(context.Background(), `SELECT payload FROM inbox.dead_letters`).Scan(&b); err != nil {
				t.Fatal(err)
			}
			return string(b)
		}(),
	} {
		if strings.Contains(text, token) {
			t.Errorf("%s holds the activation token", where)
		}
	}
	if n := a.Count(`SELECT count(*) FROM mail.messages`); n != 0 {
		t.Fatalf("%d emails recorded as sent", n)
	}
	info, err := a.NATS.JS.Stream(context.Background(), outbox.InternalStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.MaxAge; got != broker.InternalMaxAge || got < users.ActivationTokenTTL+time.Hour || got > 48*time.Hour {
		t.Fatalf("INTERNAL keeps events %s, want an hour past the token's life (%s), not days", got, users.ActivationTokenTTL)
	}

	// The server accepts mail again; the dead letter cannot be sent.
	srv.accept.Store(true)
	var dl struct {
		DeadLetters []struct{ ID string } `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(list.Raw), &dl); err != nil || len(dl.DeadLetters) != 1 {
		t.Fatalf("%s: %v", list.Raw, err)
	}
	retry := a.API("POST", "/admin/dead-letters/"+dl.DeadLetters[0].ID+"/retry", nil, auth...)
	if retry.Status != 409 || retry.ErrorCode() != "retry_failed" || !strings.Contains(retry.Raw, "redacted") {
		t.Fatalf("retry of the redacted dead letter: %d %s", retry.Status, retry.Raw)
	}
	if n := len(srv.received()); n != 0 {
		t.Fatalf("the retry sent %d emails", n)
	}
	// The way back: a new email, whose token works.
	if r := a.API("POST", "/users/activation-emails", map[string]string{"email": "ada@example.com"}); r.Status != 202 {
		t.Fatalf("resend: %d %s", r.Status, r.Raw)
	}
	waitUntil(t, 30*time.Second, "the new activation email", func() bool { return len(srv.received()) == 1 })
	qp, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(srv.received()[0])))
	if err != nil {
		t.Fatal(err)
	}
	body := string(qp)
	_, after, ok := strings.Cut(body, "/activate?token=")
	if !ok {
		t.Fatalf("no link in the email:\n%s", body)
	}
	newToken := after[:43]
	if r := a.API("POST", "/users/activate", map[string]string{"token": newToken}); r.Status != 200 {
		t.Fatalf("activate with the new email's token: %d %s", r.Status, r.Raw)
	}
	if n := a.Count(`SELECT count(*) FROM mail.messages WHERE strpos(text_body || html_body, $1) > 0`, newToken); n != 0 {
		t.Fatal("the record of the email sent over SMTP holds its token")
	}
}
