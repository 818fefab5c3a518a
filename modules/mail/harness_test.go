package mail_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
	"github.com/cairn-dev/cairn/web"
)

// fixture is the mail module on a fresh database, its routes served over
// real HTTP, and its one subscription, whose handler tests call directly.
type fixture struct {
	t    *testing.T
	db   *testenv.DB
	mail *mail.Module
	subs *outbox.Subscriptions
	sub  outbox.Subscription
	api  string
}

// newFixture builds the module with cfg (config.Default() when smtpURL is
// empty: the mailbox).
func newFixture(t *testing.T, smtpURL string) *fixture {
	t.Helper()
	db := testenv.MustDB(t)
	return newFixtureOn(t, db, smtpURL)
}

func newFixtureOn(t *testing.T, db *testenv.DB, smtpURL string) *fixture {
	t.Helper()
	cfg := config.Default()
	cfg.SMTPURL = smtpURL
	log := slog.New(slog.DiscardHandler)
	e := web.NewServer(log)
	subs := &outbox.Subscriptions{}
	m, err := mail.New(modules.Deps{Pool: db.Pool, API: e.Group("/api/v1"), Log: log, Config: cfg, Consumers: subs})
	if err != nil {
		t.Fatal(err)
	}
	all := subs.All()
	if len(all) != 1 {
		t.Fatalf("mail declared %d subscriptions, want 1", len(all))
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &fixture{t: t, db: db, mail: m.(*mail.Module), subs: subs, sub: all[0], api: srv.URL + "/api/v1"}
}

// request is the data of one synthetic users.activation_requested.v1.
type request struct {
	UserID    string    `json:"user_id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func newRequest(username, email string) request {
	return request{
		UserID: uuid.Must(uuid.NewV7()).String(), Username: username, Email: email,
		Token:     "tok_" + uuid.NewString() + "-_x",
		ExpiresAt: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second),
	}
}

// delivery wraps r in an event as the consumer runtime would hand it over.
func delivery(t *testing.T, r request) outbox.Delivery {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.Must(uuid.NewV7()).String()
	return outbox.Delivery{
		Event: outbox.CloudEvent{
			SpecVersion: "1.0", ID: id, Source: "/cairn/users", Type: mail.EventActivationRequested,
			Subject: r.UserID, Time: time.Now().UTC(), DataContentType: "application/json", Data: data,
		},
		Subject: outbox.Subject(mail.EventActivationRequested, outbox.Internal),
		Attempt: 1,
	}
}

// handle runs the subscription as the runtime does: its effect, then its
// handler in a transaction of its own, committed unless it fails.
func (f *fixture) handle(d outbox.Delivery) error {
	if f.sub.Effect != nil {
		res, err := f.sub.Effect(context.Background(), f.db.Pool, d)
		if err != nil {
			return err
		}
		d.EffectResult = res
	}
	return pgx.BeginFunc(context.Background(), f.db.Pool, func(tx pgx.Tx) error {
		return f.sub.Handle(context.Background(), tx, d)
	})
}

func (f *fixture) mustHandle(d outbox.Delivery) {
	f.t.Helper()
	if err := f.handle(d); err != nil {
		f.t.Fatalf("handle %s: %v", d.Event.ID, err)
	}
}

// rows counts the messages stored, for one event or (eventID "") all.
func (f *fixture) rows(eventID string) int {
	f.t.Helper()
	var n int
	err := f.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM mail.messages WHERE $1 = '' OR event_id::text = $1`, eventID).Scan(&n)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

type mailboxMessage struct {
	ID      string    `json:"id"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	HTML    string    `json:"html"`
	SentAt  time.Time `json:"sent_at"`
	EventID string    `json:"event_id"`
}

type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// mailbox calls GET /mail/messages?to=… and decodes the answer into
// messages (200) or apiErr (otherwise).
func (f *fixture) mailbox(to string) (status int, messages []mailboxMessage, apiErr apiError) {
	f.t.Helper()
	resp, err := http.Get(f.api + "/mail/messages?to=" + url.QueryEscape(to))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		var body struct {
			Messages []mailboxMessage `json:"messages"`
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Messages == nil {
			f.t.Fatalf("mailbox answer %s: %v", raw, err)
		}
		return resp.StatusCode, body.Messages, apiErr
	}
	if err := json.Unmarshal(raw, &apiErr); err != nil {
		f.t.Fatalf("error answer %d %s: %v", resp.StatusCode, raw, err)
	}
	return resp.StatusCode, nil, apiErr
}
