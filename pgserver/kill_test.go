package pgserver

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// children returns the PIDs and start times of pid's children.
func children(t *testing.T, pid int) []killedChild {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []killedChild
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, err := readProcStat(child); err == nil && info.ppid == pid {
			out = append(out, killedChild{pid: child, start: info.start})
		}
	}
	return out
}

// Kill returns only once every process of the server has exited (or is a
// zombie, which holds no memory): with 30 busy backends to tear down, a
// restart right after it used to race their exit and fail with
// "pre-existing shared memory block ... is still in use".
func TestKillLeavesNoBackendBehind(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{DataDir: filepath.Join(testRoot(t), "pg")})
	conn := connect(t, s.URL())
	exec1(t, conn, "CREATE TABLE t (v text)")
	exec1(t, conn, "INSERT INTO t VALUES ('committed before crash')")
	for range 30 {
		c := connect(t, s.URL())
		go func() { _, _ = c.Exec(context.Background(), "SELECT count(*) FROM generate_series(1, 1000000000)") }()
	}
	time.Sleep(200 * time.Millisecond) // let the queries get going
	before := children(t, s.proc.cmd.Process.Pid)
	if len(before) < 30 {
		t.Fatalf("the server has %d processes, want at least the 30 backends", len(before))
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	for _, c := range before {
		info, err := readProcStat(c.pid)
		if err == nil && info.start == c.start && info.state != 'Z' && info.state != 'X' {
			t.Errorf("backend %d is still running (state %c) after Kill returned", c.pid, info.state)
		}
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("Restart right after Kill: %v", err)
	}
	if got := queryString(t, connect(t, s.URL()), "SELECT v FROM t"); got != "committed before crash" {
		t.Errorf("after crash recovery: v = %q", got)
	}
}

// A process of an earlier server that still holds its shared memory (here
// the test itself, attached to the segment) makes the first start fail;
// launch tries once more, and by then the segment is free.
func TestLaunchRetriesOnceWhileOldSharedMemoryIsHeld(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{DataDir: filepath.Join(testRoot(t), "pg")})
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	pidFile, err := os.ReadFile(filepath.Join(s.dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	// Line 7 of postmaster.pid is "<shared memory key> <segment id>".
	var shm []string
	if lines := strings.Split(string(pidFile), "\n"); len(lines) >= 7 {
		shm = strings.Fields(lines[6])
	}
	if len(shm) != 2 {
		t.Fatalf("no shared memory line in postmaster.pid:\n%s", pidFile)
	}
	id, err := strconv.Atoi(shm[1])
	if err != nil {
		t.Fatal(err)
	}
	seg, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		t.Fatalf("attach to the old segment %d: %v", id, err)
	}
	info, err := os.Stat(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Let go of the segment once the first start has met it (not after a
	// fixed time: on a loaded machine the start may come later than that).
	released := make(chan error, 1)
	go func() {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if strings.Contains(logSince(t, s.logPath, info.Size()), "pre-existing shared memory block") {
				break
			}
		}
		released <- unix.SysvShmDetach(seg)
	}()
	restartErr := s.Restart(context.Background())
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if restartErr != nil {
		t.Fatalf("Restart while the old segment was held until the first start met it: %v", restartErr)
	}
	if log := logSince(t, s.logPath, info.Size()); !strings.Contains(log, "pre-existing shared memory block") {
		t.Fatalf("the first start did not meet the held segment; the test proves nothing. Log:\n%s", log)
	}
}

// logSince is everything the server logged after offset (logTail keeps
// only the last lines, which a busy start pushes the first failure out of).
func logSince(t *testing.T, path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return ""
	}
	if offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}
