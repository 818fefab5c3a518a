package integration_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/testenv"
)

// A port out of range is a configuration error naming the setting (exit 2),
// before anything starts.
func TestPortOutOfRangeIsAConfigError(t *testing.T) {
	for _, env := range []string{"CAIRN_NATS_LISTEN=:99999", "CAIRN_HTTP_ADDR=:99999"} {
		out, code := runCairn(t, []string{env}, "serve")
		name, _, _ := strings.Cut(env, "=")
		if code != 2 || !strings.Contains(out, name) || !strings.Contains(out, "65535") {
			t.Errorf("%s: exit %d\n%s", env, code, out)
		}
	}
}

// A NATS port that is taken stops start-up with the server's reason, and
// not after a 30-second wait: the error is the listen error itself.
func TestTakenNATSPortFailsFast(t *testing.T) {
	db := testenv.MustDB(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, code := runCairn(t, []string{"CAIRN_DATABASE_URL=" + db.URL, "CAIRN_NATS_LISTEN=" + l.Addr().String(),
		"CAIRN_HTTP_ADDR=127.0.0.1:0", "CAIRN_DATA_DIR=" + t.TempDir()}, "serve")
	if code != 1 || !strings.Contains(out, "address already in use") || strings.Contains(out, "within 30s") {
		t.Fatalf("exit %d, want 1 with the listen error:\n%s", code, out)
	}
}

// Ctrl-C while start-up waits (here for a database that does not answer)
// stops the process at once and cleanly.
func TestCtrlCAbortsStartUp(t *testing.T) {
	closed := freePort(t)
	cmd := exec.Command(cairnBinary(t), "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CAIRN_HTTP_ADDR=127.0.0.1:0", "CAIRN_DATA_DIR=" + t.TempDir(),
		fmt.Sprintf("CAIRN_DATABASE_URL=postgres://cairn:x@127.0.0.1:%d/cairn?connect_timeout=1", closed)}
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitUntil(t, 30*time.Second, "start-up waiting for PostgreSQL", func() bool {
		_, ok := logs.find("PostgreSQL is not reachable yet")
		return ok
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || !strings.Contains(logs.String(), "start-up interrupted") {
			t.Fatalf("after Ctrl-C: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second): // the database wait alone is 30 s
		_ = cmd.Process.Kill()
		t.Fatalf("Ctrl-C did not stop start-up:\n%s", logs)
	}
}

// While `cairn serve` runs on the embedded PostgreSQL, the commands use
// its server instead of trying to start a second one on the data
// directory; `cairn db url` prints where psql can reach it, the password
// only on request. The links Cairn sends follow CAIRN_HTTP_ADDR when
// CAIRN_PUBLIC_URL is not set.
func TestCommandsBesideARunningCairn(t *testing.T) {
	dataDir := t.TempDir()
	// Run as root, PostgreSQL runs as "postgres", which must enter it.
	for _, d := range []string{filepath.Dir(dataDir), dataDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startCairn(t, map[string]string{
		"CAIRN_DATA_DIR":    dataDir,
		"CAIRN_HTTP_ADDR":   httpAddr,
		"CAIRN_NATS_LISTEN": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	})
	up, _ := p.logs.find("cairn is up")
	if !strings.Contains(up, `"console":"http://`+httpAddr+`/"`) {
		t.Errorf("the console's address does not follow CAIRN_HTTP_ADDR: %s", up)
	}
	env := []string{"CAIRN_DATA_DIR=" + dataDir, "CAIRN_LOG_LEVEL=warn"}
	if out, code := runCairn(t, env, "migrate", "status"); code != 0 || !strings.Contains(out, "users/00002_activation_email_limits.sql") || strings.Contains(out, "pending") {
		t.Errorf("migrate status beside a running Cairn: exit %d\n%s", code, out)
	}
	if out, code := runCairn(t, env, "rebuild", "ledger"); code != 0 || !strings.Contains(out, "accounts rebuilt") {
		t.Errorf("rebuild ledger beside a running Cairn: exit %d\n%s", code, out)
	}
	out, code := runCairn(t, env, "db", "url")
	if code != 0 || !strings.Contains(out, "cairn:****@") || !strings.Contains(out, filepath.Join(dataDir, "postgres")) {
		t.Errorf("db url: exit %d\n%s", code, out)
	}
	cmd := exec.Command(cairnBinary(t), "db", "url", "--password")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	url, err := cmd.Output()
	if err != nil {
		t.Fatalf("db url --password: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, strings.TrimSpace(string(url)))
	if err != nil {
		t.Fatalf("connect to the printed URL: %v", err)
	}
	var accounts int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM users.accounts`).Scan(&accounts); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// The activation link points where Cairn listens.
	code2, _ := postJSON(t, p.HTTP+"/api/v1/users", map[string]string{"username": "ada", "email": "ada@example.com", "password": "correct horse"})
	if code2 != 201 {
		t.Fatalf("sign-up: %d", code2)
	}
	waitUntil(t, 30*time.Second, "the activation email", func() bool {
		r := testenv.Do(t, "GET", p.HTTP+"/api/v1/mail/messages?to=ada@example.com", nil)
		return r.Status == 200 && strings.Contains(r.Raw, "http://"+httpAddr+"/activate?token=")
	})
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out, code := runCairn(t, env, "db", "url"); code != 0 || !strings.Contains(out, "no Cairn is running") {
		t.Errorf("db url with nothing running: exit %d\n%s", code, out)
	}
}
