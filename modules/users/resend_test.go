package users_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/testenv"
)

func (a *app) resend(email string) response {
	a.t.Helper()
	return a.API("POST", "/users/activation-emails", map[string]any{"email": email})
}

// allowAnotherResend moves every address's last request back past the
// per-minute limit, as a minute of waiting would.
func (a *app) allowAnotherResend() {
	a.t.Helper()
	if _, err := a.DB.Pool.Exec(context.Background(), `UPDATE users.activation_email_limits SET last_at = last_at - interval '61 seconds'`); err != nil {
		a.t.Fatal(err)
	}
}

// A new activation email is asked for by address and answered 202 with
// one body whatever the address: a pending account gets a new token (and
// only it works from then on) through users.activation_requested.v1; an
// active account or an unknown address gets nothing, and nobody can tell.
func TestResendActivationTellsNothingAboutAccounts(t *testing.T) {
	a := newApp(t)
	pending := a.signUp("ada", "ada@example.com", "correct horse").Body["id"].(string)
	oldToken := a.activationToken(pending).Token
	active := a.signUp("bob", "bob@example.com", "correct horse").Body["id"].(string)
	if r := a.API("POST", "/users/activate", map[string]any{"token": a.activationToken(active).Token}); r.Status != 200 {
		t.Fatalf("activate bob: %d %s", r.Status, r.Raw)
	}
	var answers []response
	evs := a.Appended(func() {
		for _, email := range []string{"ADA@example.com", "bob@example.com", "nobody@example.com"} {
			answers = append(answers, a.resend(email))
		}
	})
	for _, r := range answers {
		if r.Status != 202 || r.Raw != answers[0].Raw {
			t.Fatalf("answers differ or are not 202:\n%s\n%s", answers[0].Raw, r.Raw)
		}
	}
	if len(evs) != 1 || evs[0].Type != users.EventActivationRequested.Name() || evs[0].Subject != pending {
		t.Fatalf("appended %s, want one activation_requested for the pending account", describe(evs))
	}
	a.Drain()
	reqs := a.Stream("INTERNAL").OfKey(pending)
	if len(reqs) != 2 {
		t.Fatalf("%d activation_requested for %s, want 2", len(reqs), pending)
	}
	newToken := decodeToken(t, reqs[1])
	if newToken == oldToken {
		t.Fatal("the new email carries the old token")
	}
	if r := a.API("POST", "/users/activate", map[string]any{"token": oldToken}); r.Status != 400 || r.ErrorCode() != "invalid_token" {
		t.Fatalf("the old token after a resend: %d %s", r.Status, r.Raw)
	}
	if r := a.API("POST", "/users/activate", map[string]any{"token": newToken}); r.Status != 200 || r.Body["status"] != "active" {
		t.Fatalf("the new token: %d %s", r.Status, r.Raw)
	}
	// Active now: a further request appends nothing.
	a.allowAnotherResend()
	if evs := a.Appended(func() { a.resend("ada@example.com") }); len(evs) != 0 {
		t.Fatalf("a resend for an active account appended %s", describe(evs))
	}
	for name, body := range map[string]any{"missing": map[string]any{}, "malformed": map[string]any{"email": "ada"}, "blank": map[string]any{"email": " "}} {
		if r := a.API("POST", "/users/activation-emails", body); r.Status != 400 || r.Field("email") == nil {
			t.Errorf("%s email: %d %s", name, r.Status, r.Raw)
		}
	}
}

// One request a minute and five a day per address, whether an account has
// it or not: a refusal is 429 too_many_requests with Retry-After, and
// other addresses are not affected.
func TestResendIsRateLimitedPerAddress(t *testing.T) {
	a := newApp(t)
	a.signUp("ada", "ada@example.com", "correct horse")
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		if r := a.resend(email); r.Status != 202 {
			t.Fatalf("first request for %s: %d %s", email, r.Status, r.Raw)
		}
		r := a.resend(email)
		secs, _ := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Status != 429 || r.ErrorCode() != "too_many_requests" || secs < 1 || secs > 60 {
			t.Fatalf("second request for %s within a minute: %d %s Retry-After=%q", email, r.Status, r.Raw, r.Header.Get("Retry-After"))
		}
	}
	if r := a.resend("someone.else@example.com"); r.Status != 202 {
		t.Fatalf("another address: %d %s", r.Status, r.Raw)
	}
	for i := 2; i <= users.ResendsPerDay; i++ {
		a.allowAnotherResend()
		if r := a.resend("ada@example.com"); r.Status != 202 {
			t.Fatalf("request %d of the day: %d %s", i, r.Status, r.Raw)
		}
	}
	a.allowAnotherResend()
	r := a.resend("ADA@example.com")
	secs, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != 429 || secs < 23*3600 {
		t.Fatalf("request %d of the day: %d %s Retry-After=%q, want about a day", users.ResendsPerDay+1, r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if n := len(a.Stream("INTERNAL").OfType(users.EventActivationRequested.Name())); n != 1+users.ResendsPerDay {
		t.Fatalf("%d activation_requested events, want %d (sign-up and each accepted request)", n, 1+users.ResendsPerDay)
	}
}

// The limit lives in PostgreSQL, so it holds across replicas: 20 requests
// for one address at once, through two apps on one database, get exactly
// one 202, and exactly one email is asked for.
func TestResendLimitHoldsAcrossReplicas(t *testing.T) {
	a := newApp(t)
	id := a.signUp("ada", "ada@example.com", "correct horse").Body["id"].(string)
	b := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{users.Definition}, DB: a.DB, NATS: a.NATS})
	var wg sync.WaitGroup
	results := make(chan response, 20)
	evs := a.Appended(func() {
		for i := range 20 {
			replica := a.App
			if i%2 == 1 {
				replica = b // the other replica
			}
			wg.Go(func() {
				results <- replica.API("POST", "/users/activation-emails", map[string]any{"email": "ada@example.com"})
			})
		}
		wg.Wait()
	})
	close(results)
	counts := map[int]int{}
	for r := range results {
		counts[r.Status]++
	}
	if counts[202] != 1 || counts[429] != 19 {
		t.Fatalf("answers %v, want one 202 and 19 × 429", counts)
	}
	if len(evs) != 1 || evs[0].Subject != id {
		t.Fatalf("appended %s, want one activation_requested", describe(evs))
	}
}

func decodeToken(t *testing.T, m testenv.Message) string {
	t.Helper()
	var d users.ActivationRequested
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Token
}

// The page an activation email links to says what to do when the link has
// expired, and its script asks for a new email.
func TestActivatePageOffersANewEmail(t *testing.T) {
	a := newApp(t)
	page := testenv.Do(t, "GET", a.URL+"/activate?token=abc", nil)
	script := testenv.Do(t, "GET", a.URL+"/activate.js", nil)
	if !strings.Contains(page.Raw, "Link expired?") || !strings.Contains(page.Raw, `id="resend-form"`) ||
		!strings.Contains(script.Raw, "/api/v1/users/activation-emails") {
		t.Fatalf("the activation page offers no new email:\n%s", page.Raw)
	}
}
