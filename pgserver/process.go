package pgserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The kernel sends Pdeathsig when the *thread* that forked the child exits,
// not when the process does (https://go.dev/issue/27505). A goroutine that
// called runtime.LockOSThread and then returns takes its thread with it, so
// a server started from such a goroutine would get SIGINT at a random later
// moment. All children are therefore forked from one locked thread that
// lives as long as the process.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnStableThread(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must never exit
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// childSysProcAttr puts the child in its own process group so a terminal
// Ctrl-C reaches only Cairn, which then shuts the server down in order; and
// asks the kernel for SIGINT (postgres' "fast shutdown") if Cairn dies
// without doing so, e.g. after kill -9.
func childSysProcAttr(a *osAccount) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: a.credential(),
		Setpgid:    true,
		Pdeathsig:  syscall.SIGINT,
	}
}

// childEnv drops PG* variables: the server honours some of them (PGPORT
// changes the port, PGDATA the data directory in some tools), and whatever
// the operator set for their own psql sessions must not leak into ours.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	comm  string
	state byte
	ppid  int
	// start is when the process started, in clock ticks after boot: with
	// the PID it names one process, even after the PID is reused.
	start uint64
}

func readProcStat(pid int) (procInfo, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procInfo{}, err
	}
	// comm may itself contain spaces and parentheses, so split at the last ')'.
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return procInfo{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// After the comm: state, ppid, ... and starttime, field 22 of stat.
	fields := strings.Fields(string(b[closing+1:]))
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procInfo{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procInfo{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procInfo{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return procInfo{comm: string(b[open+1 : closing]), state: fields[0][0], ppid: ppid, start: start}, nil
}

// isLivePostgres decides whether the PID recorded in a lock file still
// belongs to a server. Checking the command name matters in containers: after
// a restart the old PID is routinely reused by an unrelated process, and
// postgres itself would then refuse to start "because another postmaster is
// running".
func isLivePostgres(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	info, err := readProcStat(pid)
	if err != nil {
		// No /proc (or it vanished meanwhile): err on the side of not
		// deleting a lock a live server may hold.
		return !errors.Is(err, fs.ErrNotExist) || procMissing()
	}
	if info.state == 'Z' || info.state == 'X' {
		return false
	}
	return info.comm == "postgres" || info.comm == "postmaster"
}

func procMissing() bool {
	_, err := os.Stat("/proc/self/stat")
	return err != nil
}

// clearStaleLocks removes lock files left by a server that died without
// cleaning up, and fails if a live server still holds them. Two servers on
// one data directory would corrupt it; postgres guards against that too, but
// our message names the directory and says what to do.
func clearStaleLocks(dataDir string, log *slog.Logger) error {
	locks, err := filepath.Glob(filepath.Join(dataDir, ".s.PGSQL.*.lock"))
	if err != nil {
		return fmt.Errorf("list socket lock files in %s: %w", dataDir, err)
	}
	// postmaster.pid first so a live server is reported by its main lock.
	locks = append([]string{filepath.Join(dataDir, "postmaster.pid")}, locks...)
	for _, lock := range locks {
		b, err := os.ReadFile(lock)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read lock file %s: %w", lock, err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		// An empty or garbled file is what a server leaves when it crashes
		// while writing the lock; postgres would refuse to start on it.
		pid, _ := strconv.Atoi(strings.TrimSpace(first))
		if isLivePostgres(pid) {
			return fmt.Errorf("another PostgreSQL server (PID %d) is using data directory %s: "+
				"stop it, or give this Cairn instance a different data directory", pid, dataDir)
		}
		log.Warn("removing stale PostgreSQL lock file", "file", lock, "pid", pid)
		if err := os.Remove(lock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale lock file %s: %w", lock, err)
		}
	}
	return nil
}

// logTail returns the last lines written to the log since offset, so startup
// errors show the server's own explanation instead of just "exit status 1".
func logTail(path string, offset int64) string {
	const maxBytes, maxLines = 8 << 10, 20
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(could not read %s: %v)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(could not read %s: %v)", path, err)
	}
	start := max(offset, fi.Size()-maxBytes, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, start, fi.Size()-start))
	if err != nil {
		return fmt.Sprintf("(could not read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	text := strings.TrimSpace(strings.Join(lines, "\n"))
	if text == "" {
		return fmt.Sprintf("(%s is empty)", path)
	}
	return text
}
