package replay_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/app"
	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/testenv"
)

// The crash test runs the app in a child process (this test binary again,
// running TestReplayChildProcess) with its own embedded NATS on a data
// directory that outlives it, so that SIGKILL stops the whole Cairn
// process mid-rebuild, as a crash would; the database is the test's.

const childEnv = "CAIRN_REPLAYTEST_CHILD"

// TestReplayChildProcess is the child: it does nothing in a normal run.
func TestReplayChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DatabaseURL = os.Getenv("CAIRN_DATABASE_URL")
	cfg.DataDir = os.Getenv("CAIRN_DATA_DIR")
	cfg.NATSListen = os.Getenv("CAIRN_NATS_LISTEN")
	cfg.AdminToken = adminToken
	slow, err := time.ParseDuration(os.Getenv("CAIRN_REPLAYTEST_SLOW"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	a, err := app.New(ctx, cfg, log, app.Options{Version: "test", Modules: append(app.Modules(), replaytestModule(false, slow))})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CHILD-UP %s\n", a.URL())
	select {} // until killed
}

type child struct {
	cmd *exec.Cmd
	url string
}

// startChild runs the app in a child process and waits until it is up.
func startChild(t *testing.T, env []string, logs *os.File) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplayChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(c.kill)
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "CHILD-UP "); ok {
				up <- u
			}
		}
	}()
	select {
	case c.url = <-up:
	case <-time.After(90 * time.Second):
		t.Fatalf("the child did not come up; its logs are in %s", logs.Name())
	}
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

// A rebuild whose process is killed in the middle is started again, from a
// reset, by the next holder of the consumer, and live consumption resumes
// after it: while writers keep committing through the crash, every event
// ends up handled exactly once since the reset, in per-key order.
func TestRebuildKilledMidwayRestartsCleanly(t *testing.T) {
	db := testenv.MustDB(t)
	dir := t.TempDir()
	logs, err := os.CreateTemp(dir, "child-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(logs.Name())
			t.Logf("children's logs:\n%s", raw)
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natsAddr := l.Addr().String()
	_ = l.Close()
	env := []string{childEnv + "=1", "CAIRN_DATABASE_URL=" + db.URL, "CAIRN_DATA_DIR=" + dir, "CAIRN_NATS_LISTEN=" + natsAddr,
		"CAIRN_REPLAYTEST_SLOW=250ms"}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	waitUntil := func(what string, d time.Duration, ok func() bool) bool {
		t.Helper()
		for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Logf("gave up waiting for %s", what)
				return false
			}
		}
		return true
	}

	a := startChild(t, env, logs)
	w := newWriter(db.Pool, 50)
	if err := w.write(context.Background(), 12000, 500); err != nil {
		t.Fatal(err)
	}
	if !waitUntil("the live consumer to handle the first events", time.Minute, func() bool {
		return count(`SELECT count(*) FROM replaytest.seen WHERE consumer = $1`, consumerSeen) == 12000
	}) {
		t.FailNow()
	}
	w.keepWriting(4, 20*time.Millisecond) // about 200 events/s, through the crash
	r := testenv.Do(t, "POST", a.url+"/api/v1/admin/replays", map[string]string{"consumer": consumerSeen, "mode": "rebuild"}, admin...)
	if r.Status != 202 {
		t.Fatalf("start a rebuild: %d %s", r.Status, r.Raw)
	}
	id := r.Body["id"].(string)
	if !waitUntil("the rebuild's progress", time.Minute, func() bool {
		return count(`SELECT count(*) FROM replay.runs WHERE id = $1 AND status = 'running' AND processed >= 2000`, id) == 1
	}) {
		t.FailNow()
	}
	a.kill()
	if n := count(`SELECT count(*) FROM replay.runs WHERE id = $1 AND status = 'running' AND processed < 12000`, id); n != 1 {
		t.Fatal("the rebuild was not in the middle when its process was killed")
	}

	b := startChild(t, env, logs)
	// Another rebuild is refused while the interrupted one is running.
	if r := testenv.Do(t, "POST", b.url+"/api/v1/admin/replays", map[string]string{"consumer": consumerSeen, "mode": "rebuild"}, admin...); r.Status != 409 || r.ErrorCode() != "replay_running" {
		t.Errorf("a second rebuild: %d %s, want 409 replay_running", r.Status, r.Raw)
	}
	waitUntil("the rebuild to finish", 2*time.Minute, func() bool {
		return count(`SELECT count(*) FROM replay.runs WHERE id = $1 AND status <> 'running'`, id) == 1
	})
	time.Sleep(500 * time.Millisecond) // writers go on after the handoff
	total := w.Stop(t)
	waitUntil("every event handled", time.Minute, func() bool {
		return count(`SELECT count(*) FROM replaytest.seen WHERE consumer = $1`, consumerSeen) >= total
	})
	time.Sleep(time.Second) // anything handled twice shows now
	seenReport(t, count, consumerSeen, total)
	if n := count(`SELECT count(*) FROM replay.runs WHERE id = $1 AND status = 'done' AND attempts >= 2`, id); n != 1 {
		t.Fatalf("the rebuild did not finish after being started again")
	}
}
