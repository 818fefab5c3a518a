package testenv

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSNode is one server of a NATSCluster. It keeps its ports and store
// across restarts.
type NATSNode struct {
	Name        string
	Port        int // clients
	ClusterPort int // routes
	MonitorPort int // HTTP monitoring: /healthz, /jsz
	conf, log   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs the node on its ports and store and waits until it accepts
// clients.
func (n *NATSNode) Start(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			tb.Fatalf("testenv: NATS node %s is already running", n.Name)
		}
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	// The port may linger for a moment after the previous process exits.
	var cmd *exec.Cmd
	var done chan struct{}
	for attempt := 0; ; attempt++ {
		cmd = exec.Command(natsServerBinary(tb), "-c", n.conf)
		cmd.Stdout, cmd.Stderr = logf, logf
		// The kernel kills it if the test binary dies without cleaning up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := startOnLockedThread(cmd); err != nil {
			_ = logf.Close()
			tb.Fatalf("testenv: start NATS node %s: %v", n.Name, err)
		}
		done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(cmd, done)
		if waitListening(n.Port, done, 30*time.Second) {
			break
		}
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if attempt == 3 {
			_ = logf.Close()
			tb.Fatalf("testenv: NATS node %s did not start:\n%s", n.Name, tailFile(n.log, 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = logf.Close() // the child holds its own descriptor
	n.cmd, n.done = cmd, done
}

func waitListening(port int, done chan struct{}, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Running reports whether the node's process is alive.
func (n *NATSNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Pid is the node's process id, 0 if it never ran.
func (n *NATSNode) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// LameDuck stops the node gracefully, as an operator's rolling restart
// does (SIGUSR2, what `nats-server --signal ldm` sends): it hands its
// JetStream leaderships over, stops accepting clients, closes the existing
// ones over a few seconds and exits. It waits for the exit.
func (n *NATSNode) LameDuck(timeout time.Duration) error {
	return n.signalAndWait(syscall.SIGUSR2, timeout)
}

// Kill9 kills the node without warning; a no-op if it is not running.
func (n *NATSNode) Kill9() { _ = n.signalAndWait(syscall.SIGKILL, time.Minute) }

func (n *NATSNode) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", n.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("NATS node %s did not exit within %s of %s; killed", n.Name, timeout, sig)
	}
}

func (n *NATSNode) healthy() error {
	if !n.Running() {
		return errors.New("not running")
	}
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.MonitorPort))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func tailFile(path string, lines int) string {
	raw, _ := os.ReadFile(path)
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// freePorts reserves n distinct loopback ports by listening on them all at
// once, then releases them for the servers to bind.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("testenv: free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// The kernel sends Pdeathsig when the thread that forked the child exits,
// not the process (https://go.dev/issue/27505); so children are forked from
// one locked thread that lives as long as the test binary.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startOnLockedThread(cmd *exec.Cmd) error {
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
