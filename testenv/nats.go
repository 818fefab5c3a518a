package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox/broker"
)

// NATS is an embedded NATS server with JetStream and Cairn's streams.
type NATS struct {
	Server *broker.Embedded
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Dir    string
	opts   NATSOptions
}

// NATSOptions tune MustNATS.
type NATSOptions struct {
	SubscriberPassword string
	Listen             string // default 127.0.0.1:0
	Dir                string // default a new temp dir
	password           string
}

// MustNATS starts a NATS server for this test and stops it at the end.
func MustNATS(tb testing.TB, opts ...NATSOptions) *NATS {
	tb.Helper()
	var o NATSOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	if o.password == "" {
		o.password = fmt.Sprintf("test-%d", time.Now().UnixNano())
	}
	n := &NATS{Dir: o.Dir}
	n.start(tb, o)
	// Pin the port so a restarted server is found at the same address.
	o.Listen = strings.TrimPrefix(n.Server.ClientURL(), "nats://")
	n.opts = o
	tb.Cleanup(n.Stop)
	return n
}

func (n *NATS) start(tb testing.TB, o NATSOptions) {
	tb.Helper()
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{
		StoreDir:           n.Dir,
		Listen:             o.Listen,
		SyncInterval:       100 * time.Millisecond,
		SubscriberPassword: o.SubscriberPassword,
		InternalPassword:   o.password,
	})
	if err != nil {
		tb.Fatalf("testenv: start NATS: %v", err)
	}
	nc, err := srv.Connect("cairn-test", slog.New(slog.DiscardHandler))
	if err != nil {
		srv.Shutdown()
		tb.Fatalf("testenv: connect NATS: %v", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		tb.Fatalf("testenv: jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := broker.EnsureStreams(ctx, js, 1); err != nil {
		tb.Fatalf("testenv: streams: %v", err)
	}
	n.Server, n.Conn, n.JS = srv, nc, js
}

// URL is the client URL an out-of-process Cairn would use (as user cairn is
// not possible from outside; see broker for the subscriber user).
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Restart starts a stopped server again on the same address and store.
func (n *NATS) Restart(tb testing.TB) {
	tb.Helper()
	n.Stop()
	n.start(tb, n.opts)
}

// Stop shuts the server down; safe to call twice.
func (n *NATS) Stop() {
	if n.Conn != nil {
		n.Conn.Close()
		n.Conn = nil
	}
	if n.Server != nil {
		n.Server.Shutdown()
		n.Server = nil
	}
}
