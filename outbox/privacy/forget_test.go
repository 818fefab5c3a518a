package privacy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// Forgetting a signed-up user destroys their key (the lake's sealed copy
// of their e-mail address is unreadable, and was never in clear there),
// publishes privacy.subject_forgotten.v1 once however often it is asked,
// and erases their messages from the public stream, while another user's
// messages stay and the lake's positions keep no gap.
func TestForgetErasesThePersonFromTheStreams(t *testing.T) {
	const token = "forget-test-token"
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = token }, RelayDeleteDelay: time.Millisecond})
	admin := []string{"Authorization", "Bearer " + token}
	signUp := func(name, email string) string {
		r := a.API("POST", "/users", map[string]string{"username": name, "email": email, "password": "correct horse battery"})
		if r.Status != 201 {
			t.Fatalf("sign up %s: %d %s", name, r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	ada := signUp("Ada", "ada.forget@example.com")
	signUp("Bob", "bob.keep@example.com")
	a.Drain()
	waitFor(t, "the sign-ups in the lake with their stream sequences", func() bool {
		return a.Count(`SELECT count(*) FROM lake.events WHERE type LIKE 'users.%' AND stream_seq IS NOT NULL`) >= 2
	})
	if n := a.Count(`SELECT count(*) FROM lake.events WHERE data::text LIKE '%ada.forget@%'`); n != 0 {
		t.Fatalf("%d lake rows hold the e-mail address in clear before anyone asked to forget it", n)
	}
	if !strings.Contains(streamText(t, a), "ada.forget@example.com") {
		t.Fatal("the public stream never held the address: the test proves nothing")
	}

	for i := 0; i < 2; i++ {
		r := a.API("DELETE", "/admin/subjects/"+ada, nil, admin...)
		if r.Status != 202 {
			t.Fatalf("forget (call %d): %d %s", i+1, r.Status, r.Raw)
		}
	}
	if r := a.API("DELETE", "/admin/subjects/"+ada, nil); r.Status != 401 {
		t.Fatalf("forget without the admin token: %d, want 401", r.Status)
	}
	waitFor(t, "the forget request done", func() bool {
		return a.Count(`SELECT count(*) FROM privacy.forget_requests WHERE subject = $1 AND done_at IS NOT NULL`, ada) == 1
	})
	if n := a.Count(`SELECT count(*) FROM privacy.subject_keys WHERE subject = $1 AND key IS NULL`, ada); n != 1 {
		t.Fatalf("the key is not destroyed (%d tombstones)", n)
	}
	a.Drain()
	text := streamText(t, a)
	if n := strings.Count(text, `"type":"privacy.subject_forgotten.v1"`); n != 1 {
		t.Fatalf("%d privacy.subject_forgotten.v1 events for two requests, want 1", n)
	}
	if strings.Contains(text, "ada.forget@example.com") {
		t.Fatal("the forgotten address is still in a message of the public stream")
	}
	if !strings.Contains(text, "bob.keep@example.com") {
		t.Fatal("another user's messages were erased too")
	}
	if gaps := a.Count(`SELECT count(*) FROM (SELECT position - lag(position) OVER (ORDER BY position) AS d FROM lake.events) g WHERE d <> 1`); gaps != 0 {
		t.Fatalf("the lake's positions have %d gaps", gaps)
	}
}

// streamText returns every message left in the public stream, one a line
// (testenv's Stream stops at an erased one).
func streamText(t *testing.T, a *testenv.App) string {
	t.Helper()
	js := a.NATS.JS
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Write(m.Data)
		b.WriteByte('\n')
	}
	return b.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
