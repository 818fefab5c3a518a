package users_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

// The page the activation email links to is the users module's: it is
// served at /activate with its script, and keeps the token in the URL to
// itself.
func TestActivatePageIsServed(t *testing.T) {
	a := newApp(t)
	for path, want := range map[string]string{"/activate?token=abc": `<form id="activate">`, "/activate.js": "/api/v1/users/activate"} {
		r := testenv.Do(t, "GET", a.URL+path, nil)
		if r.Status != 200 || !strings.Contains(r.Raw, want) {
			t.Errorf("GET %s: %d, body without %q", path, r.Status, want)
		}
	}
	r := testenv.Do(t, "GET", a.URL+"/activate?token=abc", nil)
	if r.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("activate page headers: %v", r.Header)
	}
}

// Sign-up appends exactly its two events, in one transaction and this
// order, on the user's key: read from the outbox, not from NATS.
func TestSignUpAppendsTwoEvents(t *testing.T) {
	a := newApp(t)
	var r response
	evs := a.Appended(func() { r = a.signUp("ada", "ada@example.com", "correct horse") })
	id, _ := r.Body["id"].(string)
	want := []string{"events.users.account_created.v1", "internal.users.activation_requested.v1"}
	if len(evs) != len(want) {
		t.Fatalf("sign-up appended %d events, want 2:%s", len(evs), describe(evs))
	}
	for i, e := range evs {
		if e.NATSSubject != want[i] || e.Subject != id || e.Source != "/cairn/users" {
			t.Errorf("event %d: %s key %s from %s, want %s key %s", i, e.NATSSubject, e.Subject, e.Source, want[i], id)
		}
	}
	if strings.Contains(evs[0].Raw, `"token"`) || !strings.Contains(evs[1].Raw, `"token"`) {
		t.Errorf("the token must travel in the internal event only:\n%s\n%s", evs[0].Raw, evs[1].Raw)
	}
}
