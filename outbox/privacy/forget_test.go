package privacy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// Forgetting a signed-up user destroys their key (the lake's sealed copy
// of their e-mail address is unreadable, and was never in clear there),
// publishes privacy.subject_forgotten.v1 once however often it is asked,
// erases their messages from the streams, and has the users module
// anonymise the account and the mail module drop their messages: the
// address is then in no message of any stream and no row of any table,
// while another user's data stays and the lake's positions keep no gap.
func TestForgetErasesThePersonFromTheStreams(t *testing.T) {
	const token = "forget-test-token"
	// The app's own exporter is off (it would write on its own clock); the
	// test exports into folders of its own with the same code.
	a := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) {
		c.AdminToken, c.LakeExportInterval = token, 0
	}, RelayDeleteDelay: time.Millisecond})
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
	// The lake's queries open the sealed fields while the key exists.
	if r := a.API("GET", "/lake/subjects/"+ada+"/events", nil, admin...); r.Status != 200 || !strings.Contains(r.Raw, `"email":"ada.forget@example.com"`) {
		t.Fatalf("the lake's audit trail does not show the address while the key exists: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(streamText(t, a), "ada.forget@example.com") || len(tablesHolding(t, a, "ada.forget@example.com")) == 0 {
		t.Fatal("neither the streams nor the tables held the address: the test proves nothing")
	}
	// The export holds Ada's address sealed, never in clear.
	exported := t.TempDir()
	exportLake(t, a, exported)
	if ctl := scanExport(t, exported, ada, ada); !strings.Contains(strings.Join(ctl.plain, " "), "(column subject)") {
		t.Fatalf("the scan does not find Ada's id in the subject column (%v): it reads no values", ctl.plain)
	}
	before := scanExport(t, exported, "ada.forget@example.com", ada)
	if before.files == 0 || before.sealed == 0 || before.clear != 0 || len(before.plain) != 0 {
		t.Fatalf("the export before forgetting: %d files, %d of Ada's personal fields sealed, %d in clear, the address in %v; want her fields sealed and the address nowhere",
			before.files, before.sealed, before.clear, before.plain)
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
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(a.Logs())
		}
	})
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
	a.Drain()
	if r := a.API("GET", "/lake/subjects/"+ada+"/events", nil, admin...); r.Status != 200 || strings.Contains(r.Raw, "ada.forget@") || !strings.Contains(r.Raw, `"email":null`) {
		t.Fatalf("the lake's audit trail after forgetting: %d %s", r.Status, r.Raw)
	}
	if where := tablesHolding(t, a, "ada.forget@example.com"); len(where) > 0 {
		t.Fatalf("the forgotten address is still in %v", where)
	}
	if where := tablesHolding(t, a, "bob.keep@example.com"); len(where) == 0 {
		t.Fatal("another user's address is in no table any more")
	}
	// The files exported before (kept, and added to) and a fresh export of
	// the whole lake hold the address in no value either, and Bob's events
	// are all still exported.
	m := exportLake(t, a, exported)
	fresh := t.TempDir()
	exportLake(t, a, fresh)
	for _, dir := range []string{exported, fresh} {
		after := scanExport(t, dir, "ada.forget@example.com", ada)
		if after.clear != 0 || len(after.plain) != 0 {
			t.Fatalf("the export after forgetting: %d of Ada's personal fields in clear, the address in %v", after.clear, after.plain)
		}
		if after.rows < int(m.Through) {
			t.Fatalf("the export holds %d events, the lake %d", after.rows, m.Through)
		}
	}
	if bob := scanExport(t, fresh, "bob.keep@example.com", ""); len(bob.plain) != 0 {
		t.Fatalf("Bob's address in clear in the export: %v", bob.plain)
	}
	if gaps := a.Count(`SELECT count(*) FROM (SELECT position - lag(position) OVER (ORDER BY position) AS d FROM lake.events) g WHERE d <> 1`); gaps != 0 {
		t.Fatalf("the lake's positions have %d gaps", gaps)
	}
}

// streamText returns every message left in the public stream, one a line
// (testenv's Stream stops at an erased one).
func streamText(t *testing.T, a *testenv.App) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		b.WriteString(oneStreamText(t, a, name))
	}
	return b.String()
}

func oneStreamText(t *testing.T, a *testenv.App, name string) string {
	t.Helper()
	js := a.NATS.JS
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
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
	for deadline := time.Now().Add(90 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// tablesHolding returns the tables of the database (every schema's) with a
// row whose text holds s.
func tablesHolding(t *testing.T, a *testenv.App, s string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := a.DB.Pool.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range tables {
		var n int
		if err := a.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM `+tb+` x WHERE x::text LIKE '%' || $1 || '%'`, s).Scan(&n); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		if n > 0 {
			out = append(out, tb)
		}
	}
	return out
}
