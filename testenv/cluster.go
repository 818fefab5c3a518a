package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox/broker"
)

// Cluster is three NATS servers with JetStream, clustered over routes on
// loopback, in this process, with Cairn's streams at three replicas. Nodes
// can be restarted and stream leaders moved, to test what survives a
// rolling restart.
type Cluster struct {
	Conn *nats.Conn // to every node, reconnecting
	JS   jetstream.JetStream
	opts []*natsserver.Options
	srvs []*natsserver.Server
}

// MustCluster starts the cluster and stops it when the test ends.
func MustCluster(tb testing.TB) *Cluster {
	tb.Helper()
	const n = 3
	c := &Cluster{}
	clientPorts, routePorts := freePorts(tb, n), freePorts(tb, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		c.opts = append(c.opts, &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			Cluster:    natsserver.ClusterOpts{Name: "cairn-test", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     natsserver.RoutesFromStr(strings.Join(routes, ",")),
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			// Lame duck is what a rolling restart uses; keep it short.
			LameDuckDuration:    time.Second,
			LameDuckGracePeriod: 100 * time.Millisecond,
		})
		c.srvs = append(c.srvs, nil)
	}
	tb.Cleanup(c.stop)
	for i := range n {
		c.start(tb, i)
	}
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("testenv: connect to the cluster: %v", err)
	}
	c.Conn = nc
	if c.JS, err = jetstream.New(nc); err != nil {
		tb.Fatalf("testenv: jetstream: %v", err)
	}
	// The meta leader needs a moment after the routes form.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = broker.EnsureStreams(ctx, c.JS, 3)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: cluster streams: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c
}

func (c *Cluster) start(tb testing.TB, i int) {
	tb.Helper()
	s, err := natsserver.NewServer(c.opts[i])
	if err != nil {
		tb.Fatalf("testenv: NATS node %d: %v", i+1, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		tb.Fatalf("testenv: NATS node %d did not start", i+1)
	}
	c.srvs[i] = s
}

// URL lists every node's client address.
func (c *Cluster) URL() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", o.Port))
	}
	return strings.Join(urls, ",")
}

// StreamLeader returns the index of the node leading stream, or -1.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.srvs {
		if s != nil && s.JetStreamIsStreamLeader("$G", stream) {
			return i
		}
	}
	return -1
}

// StepDown asks stream's leader to hand over to another node. It returns
// the error of the request, if any (there may be no leader right now).
func (c *Cluster) StepDown(stream string) error {
	m, err := c.Conn.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 2*time.Second)
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
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	if s := c.srvs[i]; s != nil {
		s.LameDuckShutdown()
		s.WaitForShutdown()
	}
	c.start(tb, i)
}

func (c *Cluster) stop() {
	if c.Conn != nil {
		c.Conn.Close()
	}
	for _, s := range c.srvs {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}
