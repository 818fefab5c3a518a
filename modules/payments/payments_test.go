package payments_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/payments"
	"github.com/cairn-dev/cairn/modules/payments/paymentstest"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func start(t *testing.T, gatewayURL string) *testenv.App {
	return testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.PaymentsURL = gatewayURL
		c.PaymentsDeclineAbove = 1000
		c.AdminToken = "t"
	}})
}

// command builds a delivery of a payments command, as the runtime hands
// it over.
func command(t *testing.T, typ, paymentID string, data any) outbox.Delivery {
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Delivery{Event: outbox.CloudEvent{SpecVersion: "1.0", ID: uuid.Must(uuid.NewV7()).String(), Type: typ,
		Subject: paymentID, Time: time.Now().UTC(), DataContentType: "application/json", Data: raw}, Attempt: 1}
}

func subscription(t *testing.T, a *testenv.App, consumer string) outbox.Subscription {
	for _, s := range a.Subscriptions() {
		if s.Consumer == consumer {
			return s
		}
	}
	t.Fatalf("no consumer %s", consumer)
	return outbox.Subscription{}
}

// handle runs a subscription's two phases as the runtime does.
func handle(t *testing.T, a *testenv.App, s outbox.Subscription, d outbox.Delivery) error {
	res, err := s.Effect(context.Background(), a.DB.Pool, d)
	if err != nil {
		return err
	}
	d.EffectResult = res
	return pgx.BeginFunc(context.Background(), a.DB.Pool, func(tx pgx.Tx) error { return s.Handle(context.Background(), tx, d) })
}

// A call retried after a crash between the gateway's answer and its
// record (the effect runs again, as after a redelivery) authorises once:
// the payment id is the gateway's idempotency key. Once recorded, a
// repeat of the command makes no call at all.
func TestRetriedAuthorizationChargesOnce(t *testing.T) {
	gw := paymentstest.Start(t)
	a := start(t, gw.URL)
	s := subscription(t, a, "payments_authorize")
	id := uuid.NewString()
	d := command(t, "payments.authorize_payment.v1", id, map[string]any{"payment_id": id, "amount": map[string]any{"amount": 500, "currency": "EUR"}})
	if _, err := s.Effect(context.Background(), a.DB.Pool, d); err != nil { // called, then "crashed"
		t.Fatal(err)
	}
	if err := handle(t, a, s, d); err != nil { // redelivered
		t.Fatal(err)
	}
	if err := handle(t, a, s, command(t, "payments.authorize_payment.v1", id, map[string]any{"payment_id": id, "amount": map[string]any{"amount": 500, "currency": "EUR"}})); err != nil {
		t.Fatal(err)
	}
	k := gw.Key(id)
	if k.AuthorizeCalls != 2 || k.Authorizations != 1 || k.Status != "authorized" {
		t.Errorf("gateway: %+v; want 2 calls, 1 authorisation", k)
	}
	if n := published(a, "payments.payment_authorized.v1", id); n != 1 {
		t.Errorf("%d payment_authorized events, want 1", n)
	}
}

// Void: once at the gateway however often asked, answered every time (a
// resent command gets its reply); a void before any authorisation closes
// the payment, and an authorisation after it authorises nothing.
func TestVoidIsIdempotentAndClosesThePayment(t *testing.T) {
	gw := paymentstest.Start(t)
	a := start(t, gw.URL)
	auth, void := subscription(t, a, "payments_authorize"), subscription(t, a, "payments_void")
	id, early := uuid.NewString(), uuid.NewString()
	amount := map[string]any{"amount": 500, "currency": "EUR"}
	for _, d := range []outbox.Delivery{
		command(t, "payments.authorize_payment.v1", id, map[string]any{"payment_id": id, "amount": amount}),
		command(t, "payments.void_payment.v1", id, map[string]any{"payment_id": id}),
		command(t, "payments.void_payment.v1", id, map[string]any{"payment_id": id}),
	} {
		s := auth
		if d.Event.Type == "payments.void_payment.v1" {
			s = void
		}
		if err := handle(t, a, s, d); err != nil {
			t.Fatal(err)
		}
	}
	if k := gw.Key(id); k.Voids != 1 || k.VoidCalls != 1 || k.Status != "voided" {
		t.Errorf("gateway: %+v", k)
	}
	if n := published(a, "payments.payment_voided.v1", id); n != 2 {
		t.Errorf("%d payment_voided, want 2 (one per command)", n)
	}
	if err := handle(t, a, void, command(t, "payments.void_payment.v1", early, map[string]any{"payment_id": early})); err != nil {
		t.Fatal(err)
	}
	if err := handle(t, a, auth, command(t, "payments.authorize_payment.v1", early, map[string]any{"payment_id": early, "amount": amount})); err != nil {
		t.Fatal(err)
	}
	if k := gw.Key(early); k.Authorizations != 0 {
		t.Errorf("authorised after its void: %+v", k)
	}
	if n := published(a, "payments.payment_authorized.v1", early); n != 0 {
		t.Errorf("%d payment_authorized after the void", n)
	}
}

// While the gateway is down the consumer pauses (the breaker opens) and
// none of its commands is parked; when it is back, the payment goes through once.
func TestGatewayDownPausesTheConsumer(t *testing.T) {
	gw := paymentstest.Start(t)
	a := start(t, gw.URL)
	a.Drain()
	gw.SetDown(true)
	id := uuid.NewString()
	err := pgx.BeginFunc(context.Background(), a.DB.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(context.Background(), tx, payments.CommandAuthorizePayment.New(id,
			payments.AuthorizePayment{PaymentID: id, Amount: modules.Money{Amount: 700, Currency: "EUR"}}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.Logs(), "payment gateway circuit breaker") || !strings.Contains(a.Logs(), "consumer paused") {
		if time.Now().After(deadline) {
			t.Fatal("the consumer did not pause behind an open breaker")
		}
		time.Sleep(50 * time.Millisecond)
	}
	gw.SetDown(false)
	a.Drain()
	if k := gw.Key(id); k.Authorizations != 1 || k.Status != "authorized" {
		t.Errorf("gateway after the outage: %+v", k)
	}
	if n := a.Count(`SELECT count(*) FROM inbox.dead_letters WHERE consumer LIKE 'payments_%'`); n != 0 {
		t.Errorf("%d dead letters: %s", n, a.API("GET", "/admin/dead-letters", nil, "Authorization", "Bearer t").Raw)
	}
}

// The breaker around the HTTP gateway is reported as "payment_gateway":
// closed while the gateway answers, open on /metrics (the series the
// CairnCircuitBreakerOpen alert watches) and on /api/v1/status once it
// keeps failing, closed again after it is back.
func TestGatewayBreakerIsReported(t *testing.T) {
	gw := paymentstest.Start(t)
	a := start(t, gw.URL)
	a.Drain()
	open := `cairn_circuit_breaker_state{state="open",system="payment_gateway"} 1`
	closed := `cairn_circuit_breaker_state{state="closed",system="payment_gateway"} 1`
	waitMetric(t, a, closed)
	gw.SetDown(true)
	id := uuid.NewString()
	err := pgx.BeginFunc(context.Background(), a.DB.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(context.Background(), tx, payments.CommandAuthorizePayment.New(id,
			payments.AuthorizePayment{PaymentID: id, Amount: modules.Money{Amount: 700, Currency: "EUR"}}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The paused consumer retries slowly; each retry finds the breaker
	// open (or trips it again from half open), so it is open most of the
	// time and the metric shows it.
	waitMetric(t, a, open)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.API("GET", "/status", nil).Raw, `{"system":"payment_gateway","state":"open"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("/api/v1/status does not show the breaker open: %s", a.API("GET", "/status", nil).Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	gw.SetDown(false)
	a.Drain()
	waitMetric(t, a, closed)
	if k := gw.Key(id); k.Authorizations != 1 {
		t.Errorf("gateway after the outage: %+v", k)
	}
}

// waitMetric waits up to 30 s for /metrics to have the line want.
func waitMetric(t *testing.T, a *testenv.App, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := testenv.Do(t, "GET", a.URL+"/metrics", nil)
		if strings.Contains(r.Raw, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never had %s; its breakers: %s", want, grepLines(r.Raw, "cairn_circuit_breaker_state"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// Without CAIRN_PAYMENTS_URL the simulated gateway authorises up to
// CAIRN_PAYMENTS_DECLINE_ABOVE and declines above.
func TestSimulatedGatewayDeclinesAboveTheSetting(t *testing.T) {
	a := start(t, "")
	if m := a.Module("payments").(*payments.Module); m.Gateway() != "simulated" || m.Breakers() != nil {
		t.Fatalf("gateway %s, breakers %v: the simulated gateway never fails and has no breaker", m.Gateway(), m.Breakers())
	}
	s := subscription(t, a, "payments_authorize")
	ok, no := uuid.NewString(), uuid.NewString()
	for id, amount := range map[string]int64{ok: 1000, no: 1001} {
		if err := handle(t, a, s, command(t, "payments.authorize_payment.v1", id, map[string]any{"payment_id": id, "amount": map[string]any{"amount": amount, "currency": "EUR"}})); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{ok: "authorized", no: "declined"} {
		if r := a.API("GET", "/payments/"+id, nil); r.Status != 200 || r.Body["status"] != want {
			t.Errorf("%s: %d %s, want %s", id, r.Status, r.Raw, want)
		}
	}
}

// published counts the events of a type and key in the public stream.
func published(a *testenv.App, typ, key string) int {
	return len(a.Stream(outbox.PublicStream).OfType(typ).OfKey(key))
}
