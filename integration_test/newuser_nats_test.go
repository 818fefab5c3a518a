package integration_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// The binary gives each system of CAIRN_NATS_SUBSCRIBERS its own NATS user:
// billing reads a sign-up's public event through its own durable consumer,
// on its own inbox prefix; its attempt on Cairn's mail consumer is refused
// and logged as a warning naming billing, not as an error.
func TestOutsideSystemsOfTheConfiguration(t *testing.T) {
	port := freePort(t)
	p := startCairn(t, map[string]string{
		"CAIRN_DATABASE_URL":             testenv.MustDB(t).URL,
		"CAIRN_NATS_LISTEN":              fmt.Sprintf("127.0.0.1:%d", port),
		"CAIRN_NATS_SUBSCRIBERS":         "billing:billing-pw,analytics:analytics-pw",
		"CAIRN_NATS_SUBSCRIBER_PASSWORD": "legacy-pw",
	})
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	for user, pw := range map[string]string{"analytics": "analytics-pw", "subscriber": "legacy-pw"} {
		nc, err := nats.Connect(url, nats.UserInfo(user, pw))
		if err != nil {
			t.Fatalf("%s cannot log in: %v", user, err)
		}
		nc.Close()
	}
	violations := make(chan error, 8)
	nc, err := nats.Connect(url, nats.UserInfo("billing", "billing-pw"), nats.CustomInboxPrefix("_INBOX_billing"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, outbox.PublicStream, jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "events.users.>",
	})
	if err != nil {
		t.Fatalf("billing cannot create its consumer: %v", err)
	}
	if code, body := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse"}); code != 201 {
		t.Fatalf("sign-up: %d %v", code, body)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if m.Subject() != "events.users.account_created.v1" {
			t.Errorf("billing read %s", m.Subject())
		}
		_ = m.DoubleAck(ctx)
	}
	if got != 1 {
		t.Fatalf("billing's consumer delivered %d events, want 1", got)
	}

	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if err := js.DeleteConsumer(short, outbox.InternalStream, mail.Consumer); err == nil {
		t.Fatal("billing deleted Cairn's mail consumer")
	}
	select {
	case <-violations:
	case <-time.After(5 * time.Second):
		t.Fatal("no permissions violation reported to billing")
	}
	line := p.WaitLog("Publish Violation", 10*time.Second)
	if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"user":"billing"`) {
		t.Fatalf("billing's violation is not a warning naming it: %s", line)
	}
	p.WaitLog("relay is leader", 10*time.Second)
	if n := strings.Count(p.logs.String(), `"level":"ERROR"`); n != 0 {
		t.Fatalf("%d errors logged:\n%s", n, p.logs)
	}
}
