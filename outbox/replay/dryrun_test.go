package replay_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/testenv"
)

// countingSMTP is a real SMTP server in the test process that counts the
// messages it accepted.
type countingSMTP struct {
	addr string
	got  atomic.Int64
}

func startCountingSMTP(t *testing.T) *countingSMTP {
	t.Helper()
	s := &countingSMTP{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return countingSession{s}, nil }))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return s
}

type countingSession struct{ s *countingSMTP }

func (countingSession) Reset()                               {}
func (countingSession) Logout() error                        { return nil }
func (countingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (countingSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (x countingSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	x.s.got.Add(1)
	return nil
}

// A dry run of the mail consumer over every sign-up sends no email (the
// SMTP server counts none more) and lists one would-be email per
// activation, with its recipient; the policies refuse what they must.
func TestDryRunOfMailSendsNoEmail(t *testing.T) {
	smtpSrv := startCountingSMTP(t)
	a := testenv.StartApp(t, testenv.AppOptions{RelayDeleteDelay: time.Millisecond, Config: func(c *config.Config) {
		c.AdminToken = adminToken
		c.SMTPURL = "smtp://" + smtpSrv.addr + "?tls=none"
	}})
	const users = 6
	for i := range users {
		r := a.API("POST", "/users", map[string]string{"username": fmt.Sprintf("u%d", i), "email": fmt.Sprintf("u%d@example.com", i), "password": "correct horse battery"})
		if r.Status != 201 {
			t.Fatalf("sign up: %d %s", r.Status, r.Raw)
		}
	}
	a.Drain()
	for deadline := time.Now().Add(30 * time.Second); a.Count(`SELECT count(*) FROM lake.events WHERE type = 'users.activation_requested.v1'`) < users; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the activations never reached the lake")
		}
	}
	sent := smtpSrv.got.Load()
	if sent != users {
		t.Fatalf("live: %d emails sent for %d sign-ups", sent, users)
	}

	// What the policies refuse, and bad input.
	for _, c := range []struct {
		body   map[string]string
		status int
		code   string
	}{
		{map[string]string{"consumer": mail.Consumer, "mode": "rebuild"}, 409, "replay_not_allowed"},
		{map[string]string{"consumer": "customers_reserve_credit", "mode": "dry_run"}, 409, "replay_not_allowed"},
		{map[string]string{"consumer": "nope", "mode": "dry_run"}, 404, "not_found"},
		{map[string]string{"consumer": mail.Consumer, "mode": "again"}, 400, "validation_failed"},
		{map[string]string{"consumer": mail.Consumer, "mode": "dry_run", "from": "yesterday"}, 400, "validation_failed"},
	} {
		if r := a.API("POST", "/admin/replays", c.body, admin...); r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.body, r.Status, r.Raw, c.status, c.code)
		}
	}
	if r := a.API("POST", "/admin/replays", map[string]string{"consumer": mail.Consumer, "mode": "dry_run"}); r.Status != 401 {
		t.Errorf("without the admin token: %d", r.Status)
	}

	// With the record of the sent emails gone, a dry run whose changes
	// stayed would record them again.
	if _, err := a.DB.Pool.Exec(context.Background(), `DELETE FROM mail.messages`); err != nil {
		t.Fatal(err)
	}
	const messages = 0
	r := a.API("POST", "/admin/replays", map[string]string{"consumer": mail.Consumer, "mode": "dry_run"}, admin...)
	if r.Status != 202 {
		t.Fatalf("start a dry run: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	done := waitRun(t, a, id)
	a.Drain()
	if got := smtpSrv.got.Load(); got != sent {
		t.Fatalf("the dry run sent %d emails", got-sent)
	}
	if n := a.Count(`SELECT count(*) FROM mail.messages`); n != messages {
		t.Fatalf("the dry run's database changes stayed: %d messages recorded, %d before", n, messages)
	}
	if done.Body["status"] != "done" || done.Body["processed"].(float64) != users || done.Body["effects"].(float64) != users {
		t.Fatalf("dry run: %s", done.Raw)
	}
	eff := a.API("GET", "/admin/replays/"+id+"/effects?limit=100", nil, admin...)
	list, _ := eff.Body["effects"].([]any)
	if eff.Status != 200 || len(list) != users {
		t.Fatalf("effects: %d %s", eff.Status, eff.Raw)
	}
	for i := range users {
		if !strings.Contains(eff.Raw, fmt.Sprintf(`"to":"u%d@example.com"`, i)) {
			t.Errorf("no would-be email to u%d@example.com in %s", i, eff.Raw)
		}
	}
	if strings.Contains(eff.Raw, "token") {
		t.Errorf("the recorded effects show a token: %s", eff.Raw)
	}
	if r := a.API("GET", "/admin/replays/0193a3b0-0000-7000-8000-000000000000", nil, admin...); r.Status != 404 {
		t.Errorf("unknown replay: %d", r.Status)
	}
	if r := a.API("GET", "/admin/replays/"+id+"/effects?limit=0", nil, admin...); r.Status != 400 {
		t.Errorf("limit=0: %d", r.Status)
	}
}
