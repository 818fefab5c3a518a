package users_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// app is the users module served over real HTTP on a fresh database, with a
// relay publishing to a real NATS, and every log line kept for inspection.
type app struct {
	t     *testing.T
	url   string
	users *users.Module
	db    *testenv.DB
	nats  *testenv.NATS
	relay *relay.Relay
	logs  *syncBuffer
}

func newApp(t *testing.T) *app {
	t.Helper()
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := web.NewServer(log)
	m, err := users.New(modules.Deps{Pool: db.Pool, API: e.Group("/api/v1"), Log: log, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "users" {
		t.Fatalf("Name() = %q", m.Name())
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	r := testenv.MustRelay(t, db, nt)
	return &app{t: t, url: srv.URL + "/api/v1", users: m.(*users.Module), db: db, nats: nt, relay: r, logs: logs}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type response = testenv.Response

// do sends a request to the module's API (see testenv.Do).
func (a *app) do(method, path string, body any, header ...string) response {
	a.t.Helper()
	return testenv.Do(a.t, method, a.url+path, body, header...)
}

func (a *app) signUp(username, email, password string) response {
	a.t.Helper()
	r := a.do("POST", "/users", map[string]any{"username": username, "email": email, "password": password})
	if r.Status != 201 {
		a.t.Fatalf("sign up %s: %d %s", email, r.Status, r.Raw)
	}
	return r
}

// settle waits until the relay leads and has published every committed
// event, so that what the streams hold is final.
func (a *app) settle() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		m, err := a.relay.Metrics(ctx)
		if err == nil && m.State == relay.Leader && m.Backlog == 0 {
			return
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("relay did not drain the outbox: %+v %v", m, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// published is one message of a stream.
type published struct {
	NATSSubject string // where it was published
	Raw         string // the whole CloudEvent as sent
	outbox.CloudEvent
}

// stream returns every message of a stream, in stream order, after settle.
func (a *app) stream(name string) []published {
	a.t.Helper()
	a.settle()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := a.nats.JS.Stream(ctx, name)
	if err != nil {
		a.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	var out []published
	if info.State.Msgs == 0 {
		return out
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			a.t.Fatal(err)
		}
		p := published{NATSSubject: m.Subject, Raw: string(m.Data)}
		if err := json.Unmarshal(m.Data, &p.CloudEvent); err != nil {
			a.t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// ofKey keeps the events of one key.
func ofKey(evs []published, key string) []published {
	var out []published
	for _, e := range evs {
		if e.Subject == key {
			out = append(out, e)
		}
	}
	return out
}

// ofType keeps the events of one type.
func ofType(evs []published, typ string) []published {
	var out []published
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// activationToken reads the token of a user's activation_requested event
// from the INTERNAL stream, as the mail module would.
func (a *app) activationToken(userID string) users.ActivationRequested {
	a.t.Helper()
	evs := ofType(ofKey(a.stream(outbox.InternalStream), userID), users.EventActivationRequested)
	if len(evs) != 1 {
		a.t.Fatalf("%d activation_requested events for %s, want 1", len(evs), userID)
	}
	var d users.ActivationRequested
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		a.t.Fatal(err)
	}
	return d
}

// count returns a count(*) query's answer.
func (a *app) count(sql string, args ...any) int {
	a.t.Helper()
	var n int
	if err := a.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		a.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// describe lists events briefly, for failure messages.
func describe(evs []published) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s key=%s", e.NATSSubject, e.ID, e.Subject)
	}
	return b.String()
}
