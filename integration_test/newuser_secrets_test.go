package integration_test

import (
	"context"
	"encoding/hex"
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
	"github.com/jackc/pgx/v5"

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
// Nothing Cairn keeps for operators holds its token in clear: not the dead
// letter (sealed), not the admin API or the log (redacted), not the record
// of sent mail, not any table once the outbox has moved on; INTERNAL keeps
// the event 25 hours, an hour past the token's life. Once the SMTP server
// is fixed, the operator re-drives the dead letter: the retry opens the
// sealed token and sends the email that was parked, whose link works.
func TestActivationTokenIsNotKeptForOperators(t *testing.T) {
	srv := startRefusingSMTP(t)
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.SMTPURL = "smtp://" + srv.addr + "?tls=none" // plain SMTP on loopback, said explicitly
		c.AdminToken = "admin-secret"
	}, RelayDeleteDelay: time.Millisecond}) // published rows leave the outbox at once, into the lake
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

	// At rest, while it is parked: no table holds the token in clear.
	a.Drain()
	waitUntil(t, 30*time.Second, "the outbox emptied into the lake", func() bool { return a.Count(`SELECT count(*) FROM outbox.events`) == 0 })
	if where := tablesHolding(t, a, token); len(where) > 0 {
		t.Fatalf("the activation token is at rest in clear in %v", where)
	}

	// The server accepts mail again: the parked email is re-driven, with
	// the token it was parked with.
	srv.accept.Store(true)
	var dl struct {
		DeadLetters []struct{ ID string } `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(list.Raw), &dl); err != nil || len(dl.DeadLetters) != 1 {
		t.Fatalf("%s: %v", list.Raw, err)
	}
	retry := a.API("POST", "/admin/dead-letters/"+dl.DeadLetters[0].ID+"/retry", nil, auth...)
	if retry.Status != 200 {
		t.Fatalf("retry of the sealed dead letter: %d %s", retry.Status, retry.Raw)
	}
	waitUntil(t, 30*time.Second, "the parked activation email", func() bool { return len(srv.received()) == 1 })
	qp, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(srv.received()[0])))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(qp), "/activate?token=")
	if !ok || len(after) < 43 || after[:43] != token {
		t.Fatalf("the email does not carry the parked token:\n%s", qp)
	}
	if r := a.API("POST", "/users/activate", map[string]string{"token": token}); r.Status != 200 {
		t.Fatalf("activate with the re-driven email's token: %d %s", r.Status, r.Raw)
	}
	if n := a.Count(`SELECT count(*) FROM mail.messages WHERE strpos(text_body || html_body, $1) > 0`, token); n != 0 {
		t.Fatal("the record of the email sent over SMTP holds its token")
	}
	if strings.Contains(a.Logs(), token) {
		t.Error("the log holds the activation token")
	}
	a.Drain()
	waitUntil(t, 30*time.Second, "the outbox emptied into the lake", func() bool { return a.Count(`SELECT count(*) FROM outbox.events`) == 0 })
	if where := tablesHolding(t, a, token); len(where) > 0 {
		t.Fatalf("the activation token is at rest in clear in %v", where)
	}
}

// tablesHolding names every table of the database (PostgreSQL's own
// aside) with a row whose text holds secret, bytea columns included.
func tablesHolding(t *testing.T, a *testenv.App, secret string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := a.DB.Pool.Query(ctx, `SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	hexed := hex.EncodeToString([]byte(secret)) // how a bytea column reads as text
	var out []string
	for _, tbl := range tables {
		var n int
		if err := a.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM `+tbl+` t WHERE strpos(t::text, $1) > 0 OR strpos(t::text, $2) > 0`, secret, hexed).Scan(&n); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		if n > 0 {
			out = append(out, tbl)
		}
	}
	if len(tables) < 10 {
		t.Fatalf("only %d tables scanned: %v", len(tables), tables)
	}
	return out
}
