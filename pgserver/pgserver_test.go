package pgserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testRoot returns a directory the server's OS account can traverse.
// t.TempDir() cannot be used: it is 0700 and owned by root when tests run as
// root, and the server then runs as "postgres".
func testRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove test dir: %v", err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts a server and registers its shutdown; a failing
// shutdown fails the test because it would hide a leaked process.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestFindBinDirOnThisMachine(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatalf("FindBinDir: %v (these tests need the PostgreSQL server binaries installed)", err)
	}
	if !isBinDir(dir) {
		t.Fatalf("FindBinDir returned %s, which lacks postgres or initdb", dir)
	}
	t.Logf("binaries in %s", dir)
}

func TestFindBinDirNotFound(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "no-postgres-here")
	saved := searchRoots
	searchRoots = []string{bogus}
	t.Cleanup(func() { searchRoots = saved })
	t.Setenv("PATH", "")

	_, err := FindBinDir()
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("FindBinDir error = %v, want one wrapping ErrBinariesNotFound", err)
	}
	const want = `PostgreSQL server binaries not found (looked on PATH, via pg_config and under /usr/lib/postgresql/*/bin): ` +
		`install the Debian package "postgresql" (apt-get install postgresql) or set CAIRN_DATABASE_URL to use your own server`
	if got := strings.ReplaceAll(err.Error(), bogus, "/usr/lib/postgresql"); got != want {
		t.Fatalf("error message:\n got %s\nwant %s", got, want)
	}

	// Start must surface the same actionable error.
	_, err = Start(context.Background(), Config{DataDir: filepath.Join(t.TempDir(), "pg"), Logger: testLogger(t)})
	if !errors.Is(err, ErrBinariesNotFound) {
		t.Fatalf("Start error = %v, want one wrapping ErrBinariesNotFound", err)
	}
}

func TestVersionOrder(t *testing.T) {
	for _, c := range []struct{ a, b string }{{"9.6", "10"}, {"10", "15"}, {"15", "16"}, {"x", "9"}, {"15", "15.1"}} {
		if !versionLess(c.a, c.b) || versionLess(c.b, c.a) {
			t.Errorf("want %q < %q", c.a, c.b)
		}
	}
}

func TestWriteRestartRead(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(testRoot(t), "data", "postgres")
	s := startServer(t, Config{DataDir: dataDir, Settings: map[string]string{"work_mem": "8MB"}})

	if !strings.Contains(s.URL(), "host="+dataDir+"&port=5432") || !strings.Contains(s.URL(), "sslmode=disable") {
		t.Errorf("URL %q should use the socket in the data directory", s.URL())
	}
	if fi, err := os.Stat(passwordPath(dataDir)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file: %v, %v; want mode 0600", fi, err)
	}

	conn := connect(t, s.URL())
	if got := queryString(t, conn, "SELECT current_database()"); got != "cairn" {
		t.Errorf("current_database = %q", got)
	}
	if got := queryString(t, conn, "SHOW work_mem"); got != "8MB" {
		t.Errorf("Config.Settings not applied: work_mem = %q", got)
	}
	for setting, want := range map[string]string{"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "data_checksums": "on"} {
		if got := queryString(t, conn, "SHOW "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	exec1(t, conn, "CREATE TABLE notes (id int PRIMARY KEY, body text)")
	exec1(t, conn, "INSERT INTO notes VALUES (1, 'survives restarts')")
	conn.Close(context.Background())

	// Tests create a fresh database each; AdminURL must reach it.
	exec1(t, connect(t, s.AdminURL("postgres")), "CREATE DATABASE test_fresh")
	if got := queryString(t, connect(t, s.AdminURL("test_fresh")), "SELECT current_database()"); got != "test_fresh" {
		t.Errorf("AdminURL database = %q", got)
	}

	url := s.URL()
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.URL() != url {
		t.Errorf("URL changed across Restart: %q -> %q", url, s.URL())
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT body FROM notes WHERE id = 1"); got != "survives restarts" {
		t.Errorf("after Restart: body = %q", got)
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop should be a no-op: %v", err)
	}

	// A later Start reuses the cluster and its stored password.
	s2 := startServer(t, Config{DataDir: dataDir})
	if got := queryString(t, connect(t, s2.URL()), "SELECT body FROM notes WHERE id = 1"); got != "survives restarts" {
		t.Errorf("after Stop and Start: body = %q", got)
	}
}

func TestKillThenRestartKeepsCommittedData(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{DataDir: filepath.Join(testRoot(t), "pg")})
	conn := connect(t, s.URL())
	exec1(t, conn, "CREATE TABLE t (v text)")
	exec1(t, conn, "INSERT INTO t VALUES ('committed before crash')")

	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := s.Kill(); err == nil {
		t.Error("Kill of a stopped server should fail")
	}
	// The lock file is left behind, as after a real crash.
	if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); err != nil {
		t.Errorf("expected a stale postmaster.pid after Kill: %v", err)
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("Restart after Kill: %v", err)
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT v FROM t"); got != "committed before crash" {
		t.Errorf("after crash recovery: v = %q", got)
	}
}

func TestTwoInstancesDoNotCollide(t *testing.T) {
	t.Parallel()
	root := testRoot(t)
	type result struct {
		s   *Server
		err error
	}
	results := make(chan result, 2)
	var started []*Server
	for _, name := range []string{"a", "b"} {
		go func() {
			s, err := Start(context.Background(), Config{DataDir: filepath.Join(root, name), Logger: testLogger(t)})
			results <- result{s, err}
		}()
	}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("Start: %v", r.err)
			continue
		}
		started = append(started, r.s)
		t.Cleanup(func() {
			if err := r.s.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, s := range started {
		conn := connect(t, s.URL())
		exec1(t, conn, "CREATE TABLE who (name text)")
		exec1(t, conn, "INSERT INTO who VALUES ($1)", strconv.Itoa(i))
	}
	for i, s := range started {
		if got := queryString(t, connect(t, s.URL()), "SELECT string_agg(name, ',') FROM who"); got != strconv.Itoa(i) {
			t.Errorf("instance %d sees %q: the instances share a server", i, got)
		}
	}
}

func TestSecondStartOnRunningDataDirFails(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(testRoot(t), "pg")
	s := startServer(t, Config{DataDir: dataDir})

	_, err := Start(context.Background(), Config{DataDir: dataDir, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("second Start on a running data directory succeeded")
	}
	if !strings.Contains(err.Error(), "another PostgreSQL server") || !strings.Contains(err.Error(), dataDir) {
		t.Errorf("error should say another server uses %s; got: %v", dataDir, err)
	}
	// The failed attempt must not have disturbed the running server.
	if got := queryString(t, connect(t, s.URL()), "SELECT 'still up'"); got != "still up" {
		t.Errorf("got %q", got)
	}
}

func TestLongDataDirFallsBackToTCP(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(testRoot(t), strings.Repeat("long-directory-name-", 5), "postgres")
	if len(socketPath(dataDir)) <= maxSocketPath {
		t.Fatalf("test path too short: %d bytes", len(socketPath(dataDir)))
	}
	s := startServer(t, Config{DataDir: dataDir})
	if !strings.HasPrefix(s.URL(), "postgres://cairn:") || !strings.Contains(s.URL(), "@127.0.0.1:") {
		t.Fatalf("URL %q should use loopback TCP", s.URL())
	}
	conn := connect(t, s.URL())
	if got := queryString(t, conn, "SHOW listen_addresses"); got != "127.0.0.1" {
		t.Errorf("listen_addresses = %q", got)
	}
	exec1(t, conn, "CREATE TABLE t AS SELECT 42 AS v")
	conn.Close(context.Background())

	url := s.URL()
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if s.URL() != url {
		t.Errorf("port changed across Restart: %q -> %q", url, s.URL())
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT v::text FROM t"); got != "42" {
		t.Errorf("v = %q", got)
	}
}

func TestReservedSettingsRejected(t *testing.T) {
	_, err := Start(context.Background(), Config{
		DataDir:  filepath.Join(t.TempDir(), "pg"),
		Settings: map[string]string{"port": "6543"},
		Logger:   testLogger(t),
	})
	if err == nil || !strings.Contains(err.Error(), `"port"`) {
		t.Fatalf("want an error about overriding port, got %v", err)
	}
}

func TestUntraversableParentIsReported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root switches to another OS account, so only root can hit this")
	}
	t.Parallel()
	parent := filepath.Join(testRoot(t), "private")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Config{DataDir: filepath.Join(parent, "pg"), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "cannot enter "+parent+" ") {
		t.Fatalf("want an error naming %s, got %v", parent, err)
	}
	if _, err := os.Stat(filepath.Join(parent, "pg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("nothing should be created before the check: %v", err)
	}
}

func TestStaleLockFromReusedPIDIsRemoved(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(testRoot(t), "pg")
	s := startServer(t, Config{DataDir: dataDir})
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	// Simulate a container restart where the old postmaster's PID now
	// belongs to an unrelated process (here: the test binary itself).
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "\n")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"+rest), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("Restart with a recycled PID in postmaster.pid: %v", err)
	}
}

// helperEnv makes the test binary act as a Cairn process that starts a
// server and then waits to be killed; see TestParentKillStopsServer.
const helperEnv = "PGSERVER_TEST_HELPER_DATADIR"

func TestHelperProcess(t *testing.T) {
	dataDir := os.Getenv(helperEnv)
	if dataDir == "" {
		return // not running as the helper; nothing to test
	}
	if _, err := Start(context.Background(), Config{DataDir: dataDir}); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	select {}
}

// TestParentKillStopsServer checks the Pdeathsig wiring: when the Cairn
// process is killed with SIGKILL, the kernel sends postgres SIGINT and it
// shuts down instead of lingering as an orphan holding the data directory.
func TestParentKillStopsServer(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(testRoot(t), "pg")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dataDir)
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		t.Logf("helper: %s", lines.Text())
		if lines.Text() == "READY" {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatal("helper did not report READY")
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil || !isLivePostgres(pid) {
		t.Fatalf("postmaster PID %q not running (%v)", first, err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for isLivePostgres(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d still running 30 s after its parent was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A clean shutdown removes postmaster.pid; a lingering one would mean
	// the server died some other way.
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid still present after the server exited: %v", err)
	}
	// And the data directory is immediately usable by a new server.
	startServer(t, Config{DataDir: dataDir})
}
