package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
)

// NATSCluster is a JetStream cluster of real nats-server processes on
// loopback, built from the nats-server module at the version in go.mod.
// Its users mirror the embedded server's: "cairn" may do anything, and
// "subscriber" has broker.SubscriberPermissions. Clients are not told about
// the other nodes (no_advertise), so a client that dials through proxies
// stays behind them.
type NATSCluster struct {
	Nodes              []*NATSNode
	Password           string // of the user "cairn"
	SubscriberPassword string
	dir                string
}

// SyncInterval is the cluster's JetStream fsync interval; Cairn run against
// it must be told (CAIRN_NATS_SYNC_INTERVAL).
const SyncInterval = time.Second

var (
	natsBinOnce sync.Once
	natsBinPath string
	natsBinErr  error

	sharedClusterMu sync.Mutex
	sharedCluster   *NATSCluster
)

// natsServerBinary builds nats-server once per test binary.
func natsServerBinary(tb testing.TB) string {
	tb.Helper()
	natsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-nats-server-")
		if err != nil {
			natsBinErr = err
			return
		}
		natsBinPath = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsBinPath, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("testenv: go build nats-server: %v\n%s", err, out)
		}
	})
	if natsBinErr != nil {
		tb.Fatal(natsBinErr)
	}
	return natsBinPath
}

// SharedNATSCluster returns a three-node cluster shared by every test of the
// binary, started on first use and stopped by Main; every node is running
// when it returns (one a previous test left stopped is started again).
// Tests that share it must leave it as they would want to find it, and must
// not run in parallel with each other.
func SharedNATSCluster(tb testing.TB) *NATSCluster {
	tb.Helper()
	sharedClusterMu.Lock()
	defer sharedClusterMu.Unlock()
	if sharedCluster == nil {
		sharedCluster = startNATSCluster(tb, 3)
	}
	for _, n := range sharedCluster.Nodes {
		if !n.Running() {
			n.Start(tb)
		}
	}
	return sharedCluster
}

// stopSharedNATSCluster is called by Main.
func stopSharedNATSCluster() {
	sharedClusterMu.Lock()
	defer sharedClusterMu.Unlock()
	if sharedCluster != nil {
		sharedCluster.stop()
		sharedCluster = nil
	}
	if natsBinPath != "" {
		_ = os.RemoveAll(filepath.Dir(natsBinPath))
	}
}

func startNATSCluster(tb testing.TB, size int) *NATSCluster {
	tb.Helper()
	natsServerBinary(tb) // fail before anything is started
	dir, err := os.MkdirTemp("", "cairn-nats-cluster-")
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	c := &NATSCluster{Password: fmt.Sprintf("cairn-%d", time.Now().UnixNano()), SubscriberPassword: "reader", dir: dir}
	ports := freePorts(tb, 3*size)
	for i := range size {
		c.Nodes = append(c.Nodes, &NATSNode{
			Name: fmt.Sprintf("n%d", i+1), Port: ports[3*i], ClusterPort: ports[3*i+1], MonitorPort: ports[3*i+2],
		})
	}
	for _, n := range c.Nodes {
		n.conf = filepath.Join(dir, n.Name+".conf")
		n.log = filepath.Join(dir, n.Name+".log")
		if err := os.WriteFile(n.conf, []byte(c.config(n)), 0o600); err != nil {
			tb.Fatalf("testenv: write %s: %v", n.conf, err)
		}
	}
	for _, n := range c.Nodes {
		n.Start(tb)
	}
	if err := c.WaitHealthy(60 * time.Second); err != nil {
		c.stop()
		tb.Fatalf("testenv: NATS cluster did not form: %v\n%s", err, c.LogTail(20))
	}
	return c
}

// config is a node's configuration file.
func (c *NATSCluster) config(n *NATSNode) string {
	var routes []string
	for _, o := range c.Nodes {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort)))
	}
	p := broker.SubscriberPermissions()
	return fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
max_payload: 8MB
# The minimum; clients are closed after the grace period, ~1 s apart.
lame_duck_duration: "30s"
lame_duck_grace_period: "2s"
jetstream {
  store_dir: %q
  sync_interval: %q
  max_memory_store: 64MB
  max_file_store: 4GB
}
cluster {
  name: "cairn"
  listen: "127.0.0.1:%d"
  routes: [%s]
  no_advertise: true
}
authorization {
  users: [
    {user: "cairn", password: %q}
    {user: %q, password: %q, permissions: {publish: {allow: [%s]}, subscribe: {allow: [%s]}}}
  ]
}
`, n.Name, n.Port, n.MonitorPort, filepath.Join(c.dir, n.Name+"-store"), SyncInterval.String(),
		n.ClusterPort, strings.Join(routes, ", "),
		c.Password, broker.SubscriberUser, c.SubscriberPassword, quoteAll(p.Publish), quoteAll(p.Subscribe))
}

func quoteAll(sp *natsserver.SubjectPermission) string {
	var q []string
	for _, s := range sp.Allow {
		q = append(q, fmt.Sprintf("%q", s))
	}
	return strings.Join(q, ", ")
}

// ClientURL is node i's client address, without credentials.
func (c *NATSCluster) ClientURL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.Nodes[i].Port)
}

// URL is every node's client address as user cairn, comma-separated, as
// CAIRN_NATS_URL takes it.
func (c *NATSCluster) URL() string {
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, fmt.Sprintf("nats://cairn:%s@127.0.0.1:%d", c.Password, n.Port))
	}
	return strings.Join(urls, ",")
}

// Connect opens a connection as user cairn to any node, closed when the
// test ends.
func (c *NATSCluster) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(c.URL(), nats.Name("cairn-test"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("testenv: connect to the NATS cluster: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("testenv: jetstream: %v", err)
	}
	return nc, js
}

// WaitHealthy waits until every node is running and reports itself healthy
// (its /healthz checks that JetStream has a meta leader and that the
// streams and consumers it hosts are current).
func (c *NATSCluster) WaitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = nil
		for _, n := range c.Nodes {
			if err := n.healthy(); err != nil {
				last = fmt.Errorf("%s: %w", n.Name, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not healthy within %s: %w", timeout, last)
}

// WaitStreamsCurrent waits until each named stream that exists has a leader
// and every replica is current, as seen through js.
func (c *NATSCluster) WaitStreamsCurrent(js jetstream.JetStream, timeout time.Duration, streams ...string) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		last = nil
		for _, name := range streams {
			if err := streamCurrent(js, name, len(c.Nodes)); err != nil {
				last = fmt.Errorf("stream %s: %w", name, err)
				break
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not current within %s: %w", timeout, last)
}

func streamCurrent(js jetstream.JetStream, name string, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return errors.New("no leader")
	}
	if len(info.Cluster.Replicas) != min(info.Config.Replicas, size)-1 {
		return fmt.Errorf("%d replicas besides the leader", len(info.Cluster.Replicas))
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("replica %s is not current", r.Name)
		}
	}
	return nil
}

// LogTail returns the last lines of every node's log.
func (c *NATSCluster) LogTail(lines int) string {
	var b strings.Builder
	for _, n := range c.Nodes {
		raw, _ := os.ReadFile(n.log)
		all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", n.Name, n.log, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}

func (c *NATSCluster) stop() {
	for _, n := range c.Nodes {
		n.Kill9()
	}
	_ = os.RemoveAll(c.dir)
}

// ResetStreams deletes Cairn's streams (and so every durable consumer) and,
// with replicas > 0, declares them again at that replication: each test on
// the shared cluster starts from empty streams.
func (c *NATSCluster) ResetStreams(tb testing.TB, js jetstream.JetStream, replicas int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range []string{outbox.PublicStream, outbox.InternalStream} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Fatalf("testenv: delete stream %s: %v", s, err)
		}
	}
	if replicas == 0 {
		return
	}
	if err := broker.EnsureStreams(ctx, js, replicas); err != nil {
		tb.Fatalf("testenv: declare streams: %v", err)
	}
	if err := c.WaitStreamsCurrent(js, time.Minute, outbox.PublicStream, outbox.InternalStream); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
}

// StreamLeader returns the index of the node leading stream, or -1 (no
// leader right now).
func (c *NATSCluster) StreamLeader(js jetstream.JetStream, stream string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		return -1
	}
	for i, n := range c.Nodes {
		if n.Name == info.Cluster.Leader {
			return i
		}
	}
	return -1
}

// StepDown asks stream's leader to hand over to another node. It returns
// the error of the request, if any (there may be no leader right now).
func (c *NATSCluster) StepDown(nc *nats.Conn, stream string) error {
	m, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 2*time.Second)
	if err != nil {
		return err
	}
	var resp struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("step down %s: %w", stream, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("step down %s: %s", stream, resp.Error.Description)
	}
	return nil
}

// Restart stops node i in lame-duck mode, as a rolling restart does, and
// starts it again on the same ports and store.
func (c *NATSCluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	if err := c.Nodes[i].LameDuck(time.Minute); err != nil {
		tb.Fatalf("testenv: lame-duck stop of %s: %v", c.Nodes[i].Name, err)
	}
	c.Nodes[i].Start(tb)
}
