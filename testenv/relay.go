package testenv

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox/relay"
)

// MustRelay runs a relay from db to n until the test ends, deleting
// published rows quickly (these tests do not crash the OS).
func MustRelay(tb testing.TB, db *DB, n *NATS) *relay.Relay {
	tb.Helper()
	r := relay.New(db.Pool, n.JS, relay.Options{Logger: slog.New(slog.DiscardHandler), DeleteDelay: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return r
}
