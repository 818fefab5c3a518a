package users_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// app is Cairn with the users module alone, so the streams hold only its
// events, and its facade.
type app struct {
	*testenv.App
	t     *testing.T
	users *users.Module
}

type response = testenv.Response

func newApp(t *testing.T) *app {
	t.Helper()
	env := testenv.StartApp(t, testenv.AppOptions{Modules: []modules.Definition{users.Definition}})
	return &app{App: env, t: t, users: env.Module("users").(*users.Module)}
}

func (a *app) signUp(username, email, password string) response {
	a.t.Helper()
	r := a.API("POST", "/users", map[string]any{"username": username, "email": email, "password": password})
	if r.Status != 201 {
		a.t.Fatalf("sign up %s: %d %s", email, r.Status, r.Raw)
	}
	return r
}

// activationToken reads the token of a user's activation_requested event
// from the INTERNAL stream, as the mail module would.
func (a *app) activationToken(userID string) users.ActivationRequested {
	a.t.Helper()
	evs := a.Stream(outbox.InternalStream).OfKey(userID).OfType(users.EventActivationRequested.Name())
	if len(evs) != 1 {
		a.t.Fatalf("%d activation_requested events for %s, want 1", len(evs), userID)
	}
	var d users.ActivationRequested
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		a.t.Fatal(err)
	}
	return d
}

// describe lists events briefly, for failure messages.
func describe(evs testenv.Messages) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s key=%s", e.NATSSubject, e.ID, e.Subject)
	}
	return b.String()
}
