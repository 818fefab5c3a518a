package integration_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cairnBinary builds the real binary once per test run.
func cairnBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cairn")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/cairn-dev/cairn")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// runCairn runs the binary to the end with env over a bare environment and
// returns its output and exit code.
func runCairn(tb testing.TB, env []string, args ...string) (string, int) {
	tb.Helper()
	cmd := exec.Command(cairnBinary(tb), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return string(out), code
}

// cairnProc is a running `cairn serve`.
type cairnProc struct {
	tb   testing.TB
	cmd  *exec.Cmd
	HTTP string // base URL, e.g. http://127.0.0.1:41234
	logs *logBuffer
	done chan struct{}
	err  error
}

// startCairn runs `cairn serve` with env over a clean environment (JSON
// logs, a free HTTP port, its own data dir) and waits until it is up.
func startCairn(tb testing.TB, env map[string]string) *cairnProc {
	tb.Helper()
	cmd := exec.Command(cairnBinary(tb), "serve")
	base := map[string]string{
		"CAIRN_LOG_FORMAT": "json",
		"CAIRN_LOG_LEVEL":  "info",
		"CAIRN_HTTP_ADDR":  "127.0.0.1:0",
		"CAIRN_DATA_DIR":   tb.TempDir(),
	}
	for k, v := range env {
		base[k] = v
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range base {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &cairnProc{tb: tb, cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.logs
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start cairn: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		p.Kill9()
		if tb.Failed() {
			tb.Logf("cairn (pid %d) logs:\n%s", cmd.Process.Pid, p.logs.String())
		}
	})
	line := p.WaitLog("cairn is up", 90*time.Second)
	var up struct {
		HTTP string `json:"http"`
	}
	if err := json.Unmarshal([]byte(line), &up); err != nil || up.HTTP == "" {
		tb.Fatalf("cannot read the HTTP address from %q: %v", line, err)
	}
	p.HTTP = "http://" + up.HTTP
	return p
}

// WaitLog waits for a log line containing msg and returns it.
func (p *cairnProc) WaitLog(msg string, timeout time.Duration) string {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if line, ok := p.logs.find(msg); ok {
			return line
		}
		select {
		case <-p.done:
			p.tb.Fatalf("cairn exited (%v) before logging %q:\n%s", p.err, msg, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	p.tb.Fatalf("cairn did not log %q within %s:\n%s", msg, timeout, p.logs.String())
	return ""
}

// Pid is the process id.
func (p *cairnProc) Pid() int { return p.cmd.Process.Pid }

// Kill9 kills the process without warning, as a crash would.
func (p *cairnProc) Kill9() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *cairnProc) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill9()
		return fmt.Errorf("cairn did not stop within %s", timeout)
	}
}

// logBuffer collects a process's output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) find(msg string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), msg) {
			return sc.Text(), true
		}
	}
	return "", false
}

var _ io.Writer = (*logBuffer)(nil)
