package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// syncBuffer is a log sink tests read while the server writes.
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

// outsider is one outside system's connection.
type outsider struct {
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func connectSystem(t *testing.T, e *Embedded, name, password string) *outsider {
	t.Helper()
	o := &outsider{violations: make(chan error, 64)}
	var err error
	o.nc, err = nats.Connect(e.ClientURL(), nats.UserInfo(name, password), nats.CustomInboxPrefix(SystemInboxPrefix(name)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { o.violations <- err }))
	if err != nil {
		t.Fatalf("%s cannot connect: %v", name, err)
	}
	t.Cleanup(o.nc.Close)
	if o.js, err = jetstream.New(o.nc); err != nil {
		t.Fatal(err)
	}
	return o
}

// denied runs a JetStream call that the server must refuse: NATS drops a
// publish the user may not make, so the call gets no answer and fails,
// and the connection hears of a permissions violation.
func (o *outsider) denied(t *testing.T, what string, call func(ctx context.Context) error) {
	t.Helper()
	// A denied request is never answered: a short wait is enough.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := call(ctx); err == nil {
		t.Errorf("%s was allowed", what)
		return
	}
	select {
	case err := <-o.violations:
		if !strings.Contains(err.Error(), "Permissions Violation") {
			t.Errorf("%s: %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s failed without a permissions violation", what)
	}
}

func pullConfig(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "events.>"}
}

// Each outside system has a NATS user of its own. It keeps its own durable
// consumer on EVENTS and reads public events through it; it can neither
// read, pull from, change nor delete another system's consumer or one of
// Cairn's own, nor read another system's replies. Harmless looks (the
// streams' list, a message by sequence) work. What it tries and may not do
// is logged as a warning naming it, never as an error.
func TestOutsideSystemsCannotTouchEachOther(t *testing.T) {
	logs := &syncBuffer{}
	e, err := StartEmbedded(EmbeddedConfig{
		StoreDir: t.TempDir(), Listen: "127.0.0.1:0", SyncInterval: time.Second,
		SubscriberPassword: "legacy-pw",
		Systems:            []System{{Name: "billing", Password: "billing-pw"}, {Name: "analytics", Password: "analytics-pw"}},
		Logger:             slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Cairn: its streams, one public event, and consumers of its own on
	// both streams.
	cnc, err := e.Connect("cairn", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cnc.Close)
	cjs, err := jetstream.New(cnc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(ctx, cjs, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := cjs.Publish(ctx, "events.ledger.deposited.v1", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	for stream, name := range map[string]string{outbox.PublicStream: "ledger_projection", outbox.InternalStream: "mail_activation_email"} {
		if _, err := cjs.CreateOrUpdateConsumer(ctx, stream, pullConfig(name)); err != nil {
			t.Fatal(err)
		}
	}

	billing := connectSystem(t, e, "billing", "billing-pw")
	analytics := connectSystem(t, e, "analytics", "analytics-pw")
	if _, err := nats.Connect(e.ClientURL(), nats.UserInfo("billing", "analytics-pw")); err == nil {
		t.Fatal("billing logged in with analytics' password")
	}

	// Each system keeps its own consumer and reads through it.
	for _, o := range []struct {
		name string
		sys  *outsider
	}{{"billing", billing}, {"analytics", analytics}} {
		cons, err := o.sys.js.CreateOrUpdateConsumer(ctx, outbox.PublicStream, pullConfig(o.name))
		if err != nil {
			t.Fatalf("%s cannot create its consumer: %v", o.name, err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.DoubleAck(ctx); err != nil { // the server confirms it
				t.Errorf("%s ack: %v", o.name, err)
			}
		}
		if n != 1 {
			t.Fatalf("%s's consumer delivered %d events, want 1", o.name, n)
		}
		if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 {
			t.Fatalf("%s's consumer after the ack: %+v %v", o.name, info, err)
		}
	}
	// Harmless looks: `nats stream ls`, `nats stream info EVENTS`,
	// `nats stream get EVENTS 1`, `nats consumer ls --names`.
	names := 0
	streams := billing.js.ListStreams(ctx)
	for range streams.Info() {
		names++
	}
	if streams.Err() != nil || names != 2 {
		t.Fatalf("billing lists %d streams: %v", names, streams.Err())
	}
	events, err := billing.js.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatalf("billing cannot inspect EVENTS: %v", err)
	}
	if m, err := events.GetMsg(ctx, 1); err != nil || m.Subject != "events.ledger.deposited.v1" {
		t.Fatalf("billing cannot read message 1: %v %v", m, err)
	}
	consumerNames := events.ConsumerNames(ctx)
	for range consumerNames.Name() {
	}
	if consumerNames.Err() != nil {
		t.Fatalf("billing cannot list consumer names: %v", consumerNames.Err())
	}

	// What billing may not do to analytics, to Cairn, or to streams.
	for _, victim := range []string{"analytics", "ledger_projection"} {
		billing.denied(t, "reading "+victim+"'s consumer", func(ctx context.Context) error {
			_, err := billing.js.Consumer(ctx, outbox.PublicStream, victim)
			return err
		})
		billing.denied(t, "changing "+victim+"'s consumer", func(ctx context.Context) error {
			cfg := pullConfig(victim)
			cfg.FilterSubject = "events.nothing.>"
			_, err := billing.js.CreateOrUpdateConsumer(ctx, outbox.PublicStream, cfg)
			return err
		})
		billing.denied(t, "deleting "+victim+"'s consumer", func(ctx context.Context) error {
			return billing.js.DeleteConsumer(ctx, outbox.PublicStream, victim)
		})
		billing.denied(t, "pulling from "+victim+"'s consumer", func(ctx context.Context) error {
			msg, err := billing.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.EVENTS."+victim, []byte(`{"batch":1}`))
			if err == nil {
				return fmt.Errorf("answered %q", msg.Data)
			}
			return err
		})
	}
	billing.denied(t, "listing every consumer's state", func(ctx context.Context) error {
		l := events.ListConsumers(ctx)
		for range l.Info() {
		}
		return l.Err()
	})
	billing.denied(t, "a consumer under another name", func(ctx context.Context) error {
		_, err := billing.js.CreateOrUpdateConsumer(ctx, outbox.PublicStream, pullConfig("billing-2"))
		return err
	})
	billing.denied(t, "deleting Cairn's consumer on INTERNAL", func(ctx context.Context) error {
		return billing.js.DeleteConsumer(ctx, outbox.InternalStream, "mail_activation_email")
	})
	billing.denied(t, "a consumer on INTERNAL", func(ctx context.Context) error {
		_, err := billing.js.CreateOrUpdateConsumer(ctx, outbox.InternalStream, pullConfig("billing"))
		return err
	})
	billing.denied(t, "purging EVENTS", func(ctx context.Context) error { return events.Purge(ctx) })
	for _, inbox := range []string{"_INBOX_analytics.>", "_INBOX.>", InboxPrefix + ".>", "internal.>"} {
		if _, err := billing.nc.Subscribe(inbox, func(*nats.Msg) { t.Errorf("billing read %s", inbox) }); err != nil {
			t.Fatal(err)
		}
		billing.nc.Flush()
		select {
		case err := <-billing.violations:
			if !strings.Contains(err.Error(), "Permissions Violation") {
				t.Errorf("subscribe %s: %v", inbox, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("billing may subscribe to %s", inbox)
		}
	}

	// Everyone else's consumers are as they were.
	for stream, name := range map[string]string{outbox.PublicStream: "analytics", outbox.InternalStream: "mail_activation_email"} {
		c, err := cjs.Consumer(ctx, stream, name)
		if err != nil {
			t.Fatalf("%s's consumer is gone: %v", name, err)
		}
		if f := c.CachedInfo().Config.FilterSubject; f != "events.>" {
			t.Fatalf("%s's consumer was changed: filter %q", name, f)
		}
	}
	if _, err := cjs.Consumer(ctx, outbox.PublicStream, "ledger_projection"); err != nil {
		t.Fatalf("Cairn's consumer is gone: %v", err)
	}
	// And billing can delete its own.
	if err := billing.js.DeleteConsumer(ctx, outbox.PublicStream, "billing"); err != nil {
		t.Fatalf("billing cannot delete its own consumer: %v", err)
	}

	// The server logged what billing tried as warnings naming it.
	time.Sleep(200 * time.Millisecond)
	var warned int
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "Violation") {
			continue
		}
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "user=billing") {
			t.Errorf("a client's violation is not a warning naming billing: %s", line)
		}
		warned++
	}
	if warned == 0 {
		t.Fatalf("no violation was logged:\n%s", logs)
	}
}

// The subscriber user of CAIRN_NATS_SUBSCRIBER_PASSWORD is one outside
// system: its consumer is "subscriber" and its inbox NATS's default.
func TestSubscriberIsOneSystem(t *testing.T) {
	p := SubscriberPermissions()
	for _, want := range []string{"$JS.API.CONSUMER.CREATE.EVENTS.subscriber", "$JS.API.CONSUMER.DELETE.EVENTS.subscriber"} {
		if !contains(p.Publish.Allow, want) {
			t.Errorf("subscriber may not %s", want)
		}
	}
	if !contains(p.Subscribe.Allow, "_INBOX.>") || SystemInboxPrefix("billing") != "_INBOX_billing" {
		t.Fatalf("inboxes: %v, %s", p.Subscribe.Allow, SystemInboxPrefix("billing"))
	}
	for _, bad := range []string{"cairn", "mail_x", "Billing", "a.b", "", "x*", strings.Repeat("a", 33)} {
		if ValidSystemName(bad) == nil {
			t.Errorf("%q accepted as a system name", bad)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A client port that cannot be listened on stops start-up at once with the
// server's reason, not after the 30 s wait for a server that will never
// accept clients; so does a cancelled context (Ctrl-C).
func TestEmbeddedFailsFast(t *testing.T) {
	first, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Shutdown)
	taken := strings.TrimPrefix(first.ClientURL(), "nats://")
	for listen, want := range map[string]string{taken: "listening", "192.0.2.1:4222": "listening"} {
		_, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Listen: listen, SyncInterval: time.Second})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "within") {
			t.Errorf("listen on %s: %v, want the server's reason at once", listen, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := StartEmbeddedContext(ctx, EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", SyncInterval: time.Second}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled start-up: %v", err)
	}
}
