package telemetry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

const (
	adminToken = "metrics-test-token"
	mailer     = "mail_activation_email"
)

func series(name, consumer string, labels ...string) string {
	ls := `consumer="` + consumer + `"`
	for i := 0; i+1 < len(labels); i += 2 {
		ls += fmt.Sprintf(",%s=%q", labels[i], labels[i+1])
	}
	return name + "{" + ls + "}"
}

// A scripted day: the outbox backs up behind a long transaction, the SMTP
// server goes down (failures, the breaker opens, the consumer pauses by
// itself), an operator pauses it too and events pile up, the replica stops
// and another takes over (redeliveries; the pause survives), the operator
// resumes, one recipient is refused for good (a dead letter), a copy of an
// event arrives (the inbox absorbs it), and everything drains. Every series
// moves the way the story says, and after the drain the lag is 0 by the
// second scrape.
func TestMetricsFollowAScriptedScenario(t *testing.T) {
	smtp := testenv.StartFakeSMTP(t)
	cfg := func(c *config.Config) { c.SMTPURL, c.AdminToken = smtp.URL(), adminToken }
	a := testenv.StartApp(t, testenv.AppOptions{Config: cfg})
	ctx := context.Background()
	admin := []string{"Authorization", "Bearer " + adminToken}
	signUp := func(a *testenv.App, who string) {
		t.Helper()
		r := a.API("POST", "/users", map[string]string{"username": who, "email": who + "@example.com", "password": "correct horse battery"})
		if r.Status != 201 {
			t.Fatalf("sign-up %s: %d %s", who, r.Status, r.Raw)
		}
	}
	eventually := func(a *testenv.App, what string, cond func(s scrape) bool) scrape {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			s := mustScrape(t, a.URL)
			if cond(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("/metrics never showed %s; last scrape:\n%v", what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The sampled figures come with the first background sample, which a
	// scrape waits for only briefly.
	s0 := eventually(a, "the relay leading, and a first sample", func(s scrape) bool {
		_, sampled := s["cairn_outbox_backlog_events"]
		return s["cairn_relay_leader"] == 1 && sampled
	})
	if s0.get(t, "cairn_outbox_backlog_events") != 0 || s0.get(t, series("cairn_consumer_lag_seconds", mailer)) != 0 ||
		s0.get(t, `cairn_circuit_breaker_state{state="closed",system="smtp"}`) != 1 {
		t.Fatalf("a fresh app: %v", s0)
	}

	// 1. A transaction that stays open holds the relay back: what commits
	// after it began waits in the outbox.
	blocker, err := a.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback(ctx) }() // a failed test must not hold the pool open
	if _, err := blocker.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	smtp.Down.Store(true)
	for i := range 3 {
		signUp(a, fmt.Sprintf("early%d", i))
	}
	eventually(a, "the outbox backlog", func(s scrape) bool {
		// Each sign-up appends two events: users.account_created.v1 and
		// users.activation_requested.v1.
		return s["cairn_outbox_backlog_events"] == 6 && s["cairn_outbox_oldest_unpublished_age_seconds"] > 0
	})
	if err := blocker.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// 2. The SMTP server is down: attempts fail, the breaker opens, the
	// consumer pauses itself; its events wait, acked by nobody.
	s1 := eventually(a, "the breaker open and the consumer paused", func(s scrape) bool {
		return s[`cairn_circuit_breaker_state{state="open",system="smtp"}`] == 1 &&
			s[series("cairn_consumer_paused", mailer, "reason", "outside_system")] == 1 &&
			s[series("cairn_consumer_ack_pending_events", mailer)] == 3 &&
			s[series("cairn_consumer_lag_seconds", mailer)] > 0
	})
	if s1.get(t, series("cairn_consumer_failed_attempts_total", mailer)) < 3 || s1.get(t, "cairn_relay_published_events_total") < 6 ||
		s1.get(t, "cairn_outbox_backlog_events") != 0 || s1.get(t, `cairn_http_request_duration_seconds_count{route="POST /api/v1/users",status_class="2xx"}`) != 3 ||
		s1.get(t, `cairn_http_request_latency_seconds_count`) < 3 {
		t.Fatalf("while SMTP is down: %v", s1)
	}

	// 3. An operator pauses the consumer; more sign-ups wait undelivered.
	if r := a.API("POST", "/admin/consumers/"+mailer+"/pause", map[string]string{"reason": "smtp maintenance"}, admin...); r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Raw)
	}
	for i := range 2 {
		signUp(a, fmt.Sprintf("late%d", i))
	}
	eventually(a, "the operator's pause and events pending", func(s scrape) bool {
		// Pending, or fetched by a pull request that was open when the
		// pause came, and held before their handler: unacked.
		return s[series("cairn_consumer_paused", mailer, "reason", "operator")] == 1 &&
			s[series("cairn_consumer_pending_events", mailer)]+s[series("cairn_consumer_ack_pending_events", mailer)] == 5
	})

	// 4. This replica stops; another takes over, paused still. The SMTP
	// server is back but refuses one recipient for good.
	a.Close()
	smtp.Down.Store(false)
	smtp.Refuse("late1@example.com")
	b := testenv.StartApp(t, testenv.AppOptions{Config: cfg, DB: a.DB, NATS: a.NATS})
	eventually(b, "the pause surviving the restart", func(s scrape) bool {
		return s[series("cairn_consumer_paused", mailer, "reason", "operator")] == 1 &&
			s[series("cairn_consumer_pending_events", mailer)]+s[series("cairn_consumer_ack_pending_events", mailer)] == 5
	})
	if r := b.API("POST", "/admin/consumers/"+mailer+"/resume", nil, admin...); r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Raw)
	}

	// 5. It drains: four emails go out, the refused one is parked after
	// its attempts, the three the first replica had fetched count as
	// redelivered.
	s2 := eventually(b, "the dead letter", func(s scrape) bool {
		return s[series("cairn_consumer_dead_letters", mailer)] == 1 && s[series("cairn_consumer_handled_events_total", mailer)] == 4
	})
	if s2.get(t, series("cairn_consumer_redelivered_events_total", mailer)) < 3 || s2.get(t, series("cairn_consumer_dead_letters_oldest_age_seconds", mailer)) <= 0 ||
		s2.get(t, series("cairn_consumer_paused", mailer, "reason", "operator")) != 0 ||
		s2.get(t, `cairn_circuit_breaker_state{state="closed",system="smtp"}`) != 1 {
		t.Fatalf("after the takeover: %v", s2)
	}

	// 6. A copy of a handled event arrives (a republish after the
	// deduplication window, say): the inbox absorbs it.
	msgs := b.Stream(outbox.InternalStream)
	if len(msgs) == 0 {
		t.Fatal("no internal events")
	}
	if _, err := b.NATS.JS.PublishMsg(ctx, &nats.Msg{Subject: msgs[0].NATSSubject, Data: []byte(msgs[0].Raw)}); err != nil {
		t.Fatal(err)
	}
	b.Drain()
	if got := eventually(b, "the duplicate", func(s scrape) bool {
		return s[series("cairn_consumer_duplicate_events_total", mailer)] == 1
	}); got.get(t, series("cairn_consumer_handled_events_total", mailer)) != 4 || smtp.Got.Load() != 4 {
		t.Fatalf("the copy had an effect: %v, %d emails", got, smtp.Got.Load())
	}

	// 7. Drained: nothing pending, and the lag is 0 by the second scrape
	// (a scrape a second after the last starts a fresh sample).
	var last scrape
	for range 2 {
		time.Sleep(1100 * time.Millisecond)
		last = mustScrape(t, b.URL)
		if last.get(t, series("cairn_consumer_lag_seconds", mailer)) == 0 {
			break
		}
	}
	for _, k := range []string{series("cairn_consumer_lag_seconds", mailer), series("cairn_consumer_pending_events", mailer),
		series("cairn_consumer_ack_pending_events", mailer), "cairn_outbox_backlog_events", "cairn_outbox_oldest_unpublished_age_seconds",
		series("cairn_consumer_paused", mailer, "reason", "outside_system")} {
		if v := last.get(t, k); v != 0 {
			t.Errorf("drained, yet %s = %v", k, v)
		}
	}
	if last.get(t, `cairn_db_pool_acquires_total{pool="handlers"}`) == 0 {
		t.Errorf("the handlers' pool shows no use: %v", last)
	}
}
