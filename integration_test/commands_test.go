package integration_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/testenv"
)

// The command line offers what the modules offer (cairn rebuild ledger,
// which main.go knows nothing of) and migrations by set.
func TestModuleCommandsAndMigrationSets(t *testing.T) {
	db := testenv.MustDB(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		return runCairn(t, []string{"CAIRN_DATABASE_URL=" + db.URL, "CAIRN_LOG_LEVEL=warn"}, args...)
	}
	if out, code := run("help"); code != 0 || !strings.Contains(out, "cairn rebuild ledger") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	if out, code := run("rebuild"); code != 2 || !strings.Contains(out, "usage: cairn rebuild ledger") {
		t.Errorf("rebuild without a module: exit %d, %q", code, out)
	}
	if out, code := run("rebuild", "users"); code != 2 {
		t.Errorf("rebuild of a module that offers none: exit %d, %q", code, out)
	}
	if out, code := run("rebuild", "ledger"); code != 0 || out != "ledger: 0 accounts rebuilt from the log, 0 corrected\n" {
		t.Errorf("rebuild ledger: exit %d, %q", code, out)
	}
	out, code := run("migrate", "status")
	for _, want := range []string{"platform/00001_outbox.sql", "platform/00007_outbox_wake_in_append.sql", "users/00001_users.sql", "mail/00001_mail.sql", "ledger/00001_ledger.sql", "saga/00001_saga.sql", "orders/00001_orders.sql",
		"projection/00001_projection.sql", "reporting/00001_reporting.sql"} {
		if code != 0 || !strings.Contains(out, want+" ") || strings.Contains(out, "pending") {
			t.Errorf("migrate status: exit %d, no applied %s in\n%s", code, want, out)
		}
	}
	if out, code := run("migrate", "down"); code != 2 || !strings.Contains(out, "down <platform|saga|projection|users|mail|ledger|customers|inventory|payments|orders|reporting>") {
		t.Errorf("migrate down without a set: exit %d, %q", code, out)
	}
	if out, code := run("projection"); code != 2 || !strings.Contains(out, "usage: cairn projection status | rollback <name>") {
		t.Errorf("projection without a verb: exit %d, %q", code, out)
	}
	if out, code := run("projection", "status"); code != 0 {
		t.Errorf("projection status: exit %d, %q", code, out)
	}
	if out, code := run("projection", "rollback", "reporting_stock"); code != 1 || !strings.Contains(out, "has no live version") {
		t.Errorf("rollback of a projection never built: exit %d, %q", code, out)
	}
	if out, code := run("migrate", "down", "mail"); code != 0 || out != "rolled back mail/00002_redact_smtp_tokens.sql\n" {
		t.Errorf("migrate down mail: exit %d, %q", code, out)
	}
	if out, code := run("migrate", "up"); code != 0 || !strings.HasPrefix(out, "applied mail/00002_redact_smtp_tokens.sql (") {
		t.Errorf("migrate up: exit %d, %q", code, out)
	}
}
