package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/testenv"
)

// `cairn serve` refuses to start, with exit code 2 and a message naming
// them, while running saga instances are in a state the binary no longer
// handles; once they are dealt with it starts.
func TestServeRefusesUnhandledSagaStates(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO saga.instances (saga_type, id, state, status, version, data)
		VALUES ('orders_fulfilment', '01a22ec9-d42d-7adf-a89f-44ff7bda7b0a', 'checking_fraud', 'running', 3, '{}')`); err != nil {
		t.Fatal(err)
	}
	env := []string{"CAIRN_HTTP_ADDR=127.0.0.1:0", "CAIRN_DATA_DIR=" + t.TempDir(), "CAIRN_DATABASE_URL=" + db.URL,
		"CAIRN_NATS_URL=" + nt.Server.URLWithCredentials(), "CAIRN_LOG_FORMAT=json"}
	out, code := runCairn(t, env, "serve")
	if code != 2 || !strings.Contains(out, "orders_fulfilment/checking_fraud: 1 running") || !strings.Contains(out, "has no state checking_fraud") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := db.Pool.Exec(context.Background(), `UPDATE saga.instances SET status = 'cancelled'`); err != nil {
		t.Fatal(err)
	}
	p := startCairn(t, map[string]string{"CAIRN_DATABASE_URL": db.URL, "CAIRN_NATS_URL": nt.Server.URLWithCredentials()})
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
}
