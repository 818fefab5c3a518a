package integration_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/testenv"
)

// An external system logs in to the embedded NATS as the read-only
// subscriber: it reads public events and keeps a durable consumer of its
// own, but cannot publish events nor read internal ones.
func TestExternalSubscriberIsReadOnly(t *testing.T) {
	db := testenv.MustDB(t)
	port := freePort(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":             db.URL,
		"CAIRN_NATS_LISTEN":              fmt.Sprintf("127.0.0.1:%d", port),
		"CAIRN_NATS_SUBSCRIBER_PASSWORD": "let-me-read",
	})
	p.WaitLog("relay is leader", 10*time.Second)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	if _, err := nats.Connect(url, nats.UserInfo("subscriber", "wrong")); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	permErrs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.UserInfo("subscriber", "let-me-read"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { permErrs <- err }))
	if err != nil {
		t.Fatalf("subscriber cannot connect: %v", err)
	}
	defer nc.Close()
	live, err := nc.SubscribeSync("events.>")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Its one durable consumer is named as the user (broker.SystemPermissions).
	cons, err := js.CreateOrUpdateConsumer(ctx, outbox.PublicStream, jetstream.ConsumerConfig{Durable: "subscriber", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("subscriber cannot create a durable consumer on EVENTS: %v", err)
	}

	// Cairn publishes one public and one internal event.
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(ctx, tx,
			outbox.Event{Type: "it.visible.v1", Key: "k", Data: map[string]string{"hello": "world"}},
			outbox.Event{Type: "it.token_made.v1", Key: "k", Data: map[string]string{"token": "secret"}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := live.NextMsg(10 * time.Second)
	if err != nil || msg.Subject != "events.it.visible.v1" {
		t.Fatalf("live subscription: %v %v", msg, err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if err := m.Ack(); err != nil {
			t.Errorf("ack: %v", err)
		}
	}
	if got != 1 {
		t.Fatalf("durable consumer got %d messages, want 1", got)
	}

	// Forbidden: publishing events, reading internal ones, touching INTERNAL.
	if err := nc.Publish("events.it.visible.v1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("internal.>", func(*nats.Msg) { t.Error("subscriber read an internal event") }); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	violations := 0
	for deadline := time.After(3 * time.Second); violations < 2; {
		select {
		case err := <-permErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("unexpected error: %v", err)
			}
			violations++
		case <-deadline:
			t.Fatalf("saw %d permission violations, want 2 (publish and subscribe)", violations)
		}
	}
	// Denied API requests get no answer: each times out on its own.
	short, cancelShort := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShort()
	if _, err := js.CreateOrUpdateConsumer(short, outbox.InternalStream, jetstream.ConsumerConfig{Durable: "peek"}); err == nil {
		t.Fatal("subscriber created a consumer on INTERNAL")
	}
	short2, cancelShort2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShort2()
	if _, err := js.CreateOrUpdateStream(short2, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"events.x"}}); err == nil {
		t.Fatal("subscriber created a stream")
	}
	// Nothing the subscriber tried reached the stream.
	if _, err := js.PublishAsync("events.it.visible.v1", []byte(`{}`)); err == nil {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(2 * time.Second):
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("EVENTS holds %d messages, want only Cairn's 1", info.State.Msgs)
	}
}

// The subscriber listens on every subject it may subscribe to, _INBOX.>
// included, while a user signs up: it sees the public events and neither
// an internal event nor the activation token, which reach the mail module
// through Cairn's own pull deliveries on Cairn's private inbox prefix.
func TestSubscriberSeesNoInternalEventOnAnyInbox(t *testing.T) {
	db := testenv.MustDB(t)
	port := freePort(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":             db.URL,
		"CAIRN_NATS_LISTEN":              fmt.Sprintf("127.0.0.1:%d", port),
		"CAIRN_NATS_SUBSCRIBER_PASSWORD": "let-me-read",
	})
	p.WaitLog("relay is leader", 10*time.Second)
	permErrs := make(chan error, 16)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.UserInfo("subscriber", "let-me-read"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { permErrs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	var seen []*nats.Msg
	listen := func(subject string) {
		if _, err := nc.Subscribe(subject, func(m *nats.Msg) { mu.Lock(); seen = append(seen, m); mu.Unlock() }); err != nil {
			t.Fatalf("subscribe %s: %v", subject, err)
		}
	}
	allowed := broker.SubscriberPermissions().Subscribe.Allow
	for _, subject := range allowed {
		listen(subject)
	}
	if !slices.Contains(allowed, "_INBOX.>") {
		t.Fatalf("the subscriber may not subscribe to _INBOX.> (%v): its own JetStream requests need it", allowed)
	}
	// Cairn's private prefix, and everything, are refused.
	listen(broker.InboxPrefix + ".>")
	listen(">")
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-permErrs:
			if !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("unexpected error: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the subscriber may subscribe to Cairn's inbox prefix or to >")
		}
	}

	code, user := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("sign-up: %d %v", code, user)
	}
	token := mailboxToken(t, p.HTTP, "ada@example.com") // the internal event was delivered to Cairn
	code, user = postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "bob", "email": "bob@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("sign-up: %d %v", code, user)
	}
	mailboxToken(t, p.HTTP, "bob@example.com")
	waitUntil(t, 15*time.Second, "the public events of both sign-ups", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range seen {
			if m.Subject == "events.mail.activation_email_sent.v1" {
				n++
			}
		}
		return n == 2
	})
	time.Sleep(500 * time.Millisecond) // anything still in flight
	mu.Lock()
	defer mu.Unlock()
	for _, m := range seen {
		if !strings.HasPrefix(m.Subject, "events.") || bytes.Contains(m.Data, []byte(token)) ||
			bytes.Contains(m.Data, []byte("activation_requested")) || bytes.Contains(m.Data, []byte(`"token"`)) {
			t.Errorf("the subscriber read %s (reply %q): %.300s", m.Subject, m.Reply, m.Data)
		}
	}
	if !t.Failed() {
		t.Logf("the subscriber saw %d messages, all public events", len(seen))
	}
}
