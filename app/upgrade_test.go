package app_test

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// versions returns the applied versions in a goose version table.
func versions(t *testing.T, db *sql.DB, table string) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT version_id FROM ` + table + ` WHERE is_applied ORDER BY version_id`)
	if err != nil {
		t.Fatalf("%s: %v", table, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// legacyData is what a database migrated by Cairn at 0c7eea4 holds after a
// sign-up, an email, a deposit and a dead letter, plus one event the relay
// had not published yet.
const legacyData = `
INSERT INTO users.accounts (id, username, email, password_hash, status, created_at)
VALUES ('01a22e92-826a-7d43-b636-30c45fe509f9', 'Ada Lovelace', 'Ada@Example.com', '$2a$10$abcdefghijklmnopqrstuv', 'pending', now());
INSERT INTO users.activation_tokens (token_hash, user_id, issued_at, expires_at)
VALUES (sha256('legacy-token'), '01a22e92-826a-7d43-b636-30c45fe509f9', now(), now() + interval '24 hours');
INSERT INTO ledger.accounts (id, owner, currency, balance, version, opened_at, updated_at)
VALUES ('01a22e92-8272-7190-b6a8-e6c808d2fab6', 'Ada', 'EUR', 12345, 1, now(), now());
INSERT INTO ledger.entries (account_id, version, type, amount, balance_after, occurred_at, event_id) VALUES
('01a22e92-8272-7190-b6a8-e6c808d2fab6', 0, 'opened', 0, 0, now(), '01a22e92-8272-71ec-89db-eed2bd507a61'),
('01a22e92-8272-7190-b6a8-e6c808d2fab6', 1, 'deposited', 12345, 12345, now(), '01a22e92-8273-7257-999a-7bda5ccad7f8');
INSERT INTO ledger.idempotency_keys (key, request_hash, status, response) VALUES ('w-1', '\x00', 201, '{}');
INSERT INTO mail.messages (id, event_id, user_id, to_address, subject, text_body, html_body, transport)
VALUES ('01a22e92-8270-7e22-81bf-855196f1ef94', '01a22e92-826c-787b-b80f-f6ed9ede86d5', '01a22e92-826a-7d43-b636-30c45fe509f9',
        'Ada@Example.com', 'Activate your Cairn account', 'text', 'html', 'mailbox');
INSERT INTO inbox.processed (consumer, event_id) VALUES ('mail_activation_email', '01a22e92-826c-787b-b80f-f6ed9ede86d5');
INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error)
VALUES ('01a22e92-9999-7000-8000-000000000001', 'mail_activation_email', '01a22e92-9999-7000-8000-000000000002',
        'users.activation_requested.v1', 'internal.users.activation_requested.v1', 'k', '\x7b7d', 5, 'smtp said no');
`

// A database migrated by today's main (one global goose sequence, commit
// 0c7eea4) and holding data upgrades to per-module migrations: nothing that
// was applied runs again, each module's table records its first version as
// applied, the global table keeps its history, every row is still there,
// and the app runs on it: it serves the old rows, activates with the old
// token, and publishes the event that was waiting in the outbox.
func TestUpgradeFromGlobalMigrations(t *testing.T) {
	ctx := context.Background()
	db := testenv.MustEmptyDB(t)
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	old, err := goose.NewProvider(goose.DialectPostgres, sqlDB, os.DirFS("testdata/migrations_0c7eea4"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := old.Up(ctx); err != nil || len(res) != 7 {
		t.Fatalf("old layout: %d applied, %v", len(res), err)
	}
	if _, err := db.Pool.Exec(ctx, legacyData); err != nil {
		t.Fatal(err)
	}
	waiting := readRecorded(t)[0]
	if _, err := db.Pool.Exec(ctx, `INSERT INTO outbox.events (txid, event_id, key, subject, payload)
		VALUES (pg_current_xact_id()::text::bigint, '01a22e92-826c-778e-98dd-4582e63c943d', '01a22e92-826a-7d43-b636-30c45fe509f9', $1, $2)`,
		waiting.Subject, []byte(waiting.Event)); err != nil {
		t.Fatal(err)
	}
	const counts = `SELECT (SELECT count(*) FROM users.accounts) || ' ' || (SELECT count(*) FROM users.activation_tokens) || ' ' ||
		(SELECT count(*) FROM ledger.accounts) || ' ' || (SELECT count(*) FROM ledger.entries) || ' ' || (SELECT count(*) FROM ledger.idempotency_keys) || ' ' ||
		(SELECT count(*) FROM mail.messages) || ' ' || (SELECT count(*) FROM inbox.processed) || ' ' || (SELECT count(*) FROM inbox.dead_letters) || ' ' ||
		(SELECT count(*) FROM outbox.events)`
	var before string
	if err := db.Pool.QueryRow(ctx, counts).Scan(&before); err != nil || before != "1 1 1 2 1 1 1 1 1" {
		t.Fatalf("legacy data: %q %v", before, err)
	}

	r, err := app.Migrator(sqlDB, app.Modules())
	if err != nil {
		t.Fatal(err)
	}
	applied, err := r.Up(ctx)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	for _, m := range applied {
		// Only migrations written after 0c7eea4 may run: the platform's
		// above 7, a module's of then above its adopted 1; sets that came
		// later (the saga runtime's, newer modules') run whole.
		v, _ := strconv.ParseInt(strings.SplitN(m.Path, "_", 2)[0], 10, 64)
		existed := slices.Contains([]string{"users", "mail", "ledger"}, m.Source)
		if m.Source == migrations.PlatformName && v <= 7 || existed && v <= 1 {
			t.Errorf("the upgrade ran %s/%s again", m.Source, m.Path)
		}
	}
	if got := versions(t, sqlDB, "goose_db_version"); !slices.Equal(got[:8], []int64{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("the global table lost its history: %v", got)
	}
	for _, m := range []string{"users", "mail", "ledger"} {
		if got := versions(t, sqlDB, migrations.Table(m)); len(got) < 2 || got[0] != 0 || got[1] != 1 {
			t.Errorf("%s: versions %v, want 0, 1 (adopted) and any newer", m, got)
		}
	}
	if again, err := r.Up(ctx); err != nil || len(again) != 0 {
		t.Errorf("a second run applied %d (%v)", len(again), err)
	}
	if pending, err := r.HasPending(ctx); err != nil || pending {
		t.Errorf("pending after the upgrade: %v %v", pending, err)
	}
	var after string
	if err := db.Pool.QueryRow(ctx, counts).Scan(&after); err != nil || after != before {
		t.Fatalf("rows before %q, after %q (%v)", before, after, err)
	}

	a := testenv.StartApp(t, testenv.AppOptions{DB: db})
	if r := a.API("GET", "/users/01a22e92-826a-7d43-b636-30c45fe509f9", nil); r.Status != 200 || r.Body["status"] != "pending" {
		t.Errorf("the old user: %d %s", r.Status, r.Raw)
	}
	if r := a.API("POST", "/users/activate", map[string]string{"token": "legacy-token"}); r.Status != 200 || r.Body["status"] != "active" {
		t.Errorf("activation with the old token: %d %s", r.Status, r.Raw)
	}
	if r := a.API("GET", "/accounts/01a22e92-8272-7190-b6a8-e6c808d2fab6", nil); r.Status != 200 || r.Body["balance"] != 12345.0 {
		t.Errorf("the old account: %d %s", r.Status, r.Raw)
	}
	if r := a.API("GET", "/mail/messages?to=ada@example.com", nil); r.Status != 200 || !strings.Contains(r.Raw, "01a22e92-8270-7e22-81bf-855196f1ef94") {
		t.Errorf("the old email: %d %s", r.Status, r.Raw)
	}
	pub := a.Stream(outbox.PublicStream)
	if len(pub) != 2 || pub[0].Raw != string(waiting.Event) || pub[1].Type != "users.account_activated.v1" {
		t.Errorf("EVENTS holds %d events, want the one waiting in the outbox, byte for byte, then the activation", len(pub))
	}
}

// A new database gets the platform's migrations in the global table and
// each module's in its own.
func TestFreshDatabaseLayout(t *testing.T) {
	db := testenv.MustDB(t)
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	if got := versions(t, sqlDB, "goose_db_version"); !slices.Equal(got[:5], []int64{0, 1, 3, 6, 7}) || slices.Contains(got, 2) || slices.Contains(got, 4) || slices.Contains(got, 5) {
		t.Errorf("platform versions %v", got)
	}
	for _, m := range app.Modules() {
		if m.Migrations == nil {
			continue
		}
		if got := versions(t, sqlDB, migrations.Table(m.Name)); len(got) < 2 || got[0] != 0 || got[1] != 1 {
			t.Errorf("%s: versions %v", m.Name, got)
		}
	}
}
