package mail_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// fixture is Cairn with the mail module alone (mailbox, or SMTP to
// smtpURL), and its one subscription, whose handler tests may also call
// directly.
type fixture struct {
	*testenv.App
	t    *testing.T
	mail *mail.Module
	sub  outbox.Subscription
}

func newFixture(t *testing.T, smtpURL string) *fixture {
	t.Helper()
	env := testenv.StartApp(t, testenv.AppOptions{
		Modules: []modules.Definition{mail.Definition},
		Config:  func(c *config.Config) { c.SMTPURL = smtpURL },
	})
	// The activation handler, and mail_forget (privacy.subject_forgotten.v1).
	subs := env.Subscriptions()
	if len(subs) != 2 || subs[0].Consumer != mail.Consumer || subs[1].Consumer != mail.ForgetConsumer {
		t.Fatalf("mail declared %d subscriptions, want %s and %s", len(subs), mail.Consumer, mail.ForgetConsumer)
	}
	return &fixture{App: env, t: t, mail: env.Module("mail").(*mail.Module), sub: subs[0]}
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
			SpecVersion: "1.0", ID: id, Source: "/cairn/users", Type: users.EventActivationRequested.Name(),
			Subject: r.UserID, Time: time.Now().UTC(), DataContentType: "application/json", Data: data,
		},
		Subject: users.EventActivationRequested.Declared().Subject(),
		Attempt: 1,
	}
}

// handle runs the subscription as the runtime does: its effect, then its
// handler in a transaction of its own, committed unless it fails.
func (f *fixture) handle(d outbox.Delivery) error {
	if f.sub.Effect != nil {
		res, err := f.sub.Effect(context.Background(), f.DB.Pool, d)
		if err != nil {
			return err
		}
		d.EffectResult = res
	}
	return pgx.BeginFunc(context.Background(), f.DB.Pool, func(tx pgx.Tx) error {
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
	return f.Count(`SELECT count(*) FROM mail.messages WHERE $1 = '' OR event_id::text = $1`, eventID)
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
	resp, err := http.Get(f.URL + "/api/v1/mail/messages?to=" + url.QueryEscape(to))
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
