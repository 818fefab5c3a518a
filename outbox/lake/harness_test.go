package lake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

const adminToken = "lake-admin-token"

// lakeApp is Cairn with every module and the lake on, published rows moved
// into the lake 100 ms after their ack.
type lakeApp struct {
	*testenv.App
	t *testing.T
}

func newLakeApp(t *testing.T, more ...func(*config.Config)) *lakeApp {
	t.Helper()
	a := testenv.StartApp(t, testenv.AppOptions{
		RelayDeleteDelay: 100 * time.Millisecond,
		Config: func(c *config.Config) {
			c.AdminToken = adminToken
			for _, m := range more {
				m(c)
			}
		},
	})
	return &lakeApp{App: a, t: t}
}

// admin calls a lake endpoint with the admin token.
func (a *lakeApp) admin(path string, header ...string) testenv.Response {
	a.t.Helper()
	return a.API("GET", path, nil, append([]string{"Authorization", "Bearer " + adminToken}, header...)...)
}

// settle waits until every committed event is published, handled, and moved
// into the lake: the outbox is empty.
func (a *lakeApp) settle() {
	a.t.Helper()
	a.Drain()
	deadline := time.Now().Add(30 * time.Second)
	for a.Count(`SELECT count(*) FROM outbox.events`) > 0 {
		if time.Now().After(deadline) {
			a.t.Fatalf("the outbox still holds %d rows after 30 s; mover: %+v", a.Count(`SELECT count(*) FROM outbox.events`), a.Mover().Metrics())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signUp signs a user up and activates them with the token of their
// activation request, as the email's link would; it returns the user id
// and the token.
func (a *lakeApp) signUpAndActivate(i int) (id, token string) {
	a.t.Helper()
	r := a.API("POST", "/users", map[string]any{"username": fmt.Sprintf("user%d", i),
		"email": fmt.Sprintf("user%d@example.com", i), "password": "correct horse battery"})
	if r.Status != 201 {
		a.t.Fatalf("sign up: %d %s", r.Status, r.Raw)
	}
	id = r.Body["id"].(string)
	evs := a.Stream(outbox.InternalStream).OfKey(id).OfType("users.activation_requested.v1")
	if len(evs) != 1 {
		a.t.Fatalf("%d activation requests for %s", len(evs), id)
	}
	var d struct{ Token string }
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.Token == "" {
		a.t.Fatalf("token of %s: %v", id, err)
	}
	if r := a.API("POST", "/users/activate", map[string]any{"token": d.Token}); r.Status != 200 {
		a.t.Fatalf("activate: %d %s", r.Status, r.Raw)
	}
	return id, d.Token
}

// lakeRow is what a test compares of one lake row.
type lakeRow struct {
	Position  int64
	ID        string
	Type      string
	Stream    string
	StreamSeq *int64
}

func (a *lakeApp) lakeRows() []lakeRow {
	a.t.Helper()
	rows, err := a.DB.Pool.Query(context.Background(),
		`SELECT position, id::text, type, stream, stream_seq FROM lake.events ORDER BY position`)
	if err != nil {
		a.t.Fatal(err)
	}
	defer rows.Close()
	var out []lakeRow
	for rows.Next() {
		var r lakeRow
		if err := rows.Scan(&r.Position, &r.ID, &r.Type, &r.Stream, &r.StreamSeq); err != nil {
			a.t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		a.t.Fatal(err)
	}
	return out
}
