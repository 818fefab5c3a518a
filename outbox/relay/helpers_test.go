package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
)

// startRelay runs a relay until the test ends.
func startRelay(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, opt relay.Options) (*relay.Relay, context.CancelFunc) {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.DeleteDelay == 0 {
		opt.DeleteDelay = 300 * time.Millisecond
	}
	if opt.MaxBackoff == 0 {
		opt.MaxBackoff = 500 * time.Millisecond
	}
	r := relay.New(pool, js, opt)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, stop
}

type testData struct {
	N       int `json:"n"`
	Version int `json:"version,omitempty"`
}

// appendOne commits one event in its own transaction.
func appendOne(ctx context.Context, pool *pgxpool.Pool, typ, key string, data any) (string, error) {
	var id string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		a, err := outbox.Append(ctx, tx, outbox.Event{Type: typ, Key: key, Data: data})
		if err != nil {
			return err
		}
		id = a[0].ID
		return nil
	})
	return id, err
}

type received struct {
	Subject string
	Event   outbox.CloudEvent
}

// collect waits until the stream holds want messages or the timeout
// passes, lingers briefly so a duplicate would show, and returns every
// message in stream order.
func collect(t *testing.T, js jetstream.JetStream, stream string, want int, timeout time.Duration) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	count := func() uint64 {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("stream %s info: %v", stream, err)
		}
		return info.State.Msgs
	}
	deadline := time.Now().Add(timeout)
	for count() < uint64(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []received
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s/%d: %v", stream, seq, err)
		}
		var ce outbox.CloudEvent
		if err := json.Unmarshal(m.Data, &ce); err != nil {
			t.Fatalf("message on %s is not a CloudEvent: %v", m.Subject, err)
		}
		out = append(out, received{Subject: m.Subject, Event: ce})
	}
	return out
}

func ids(rs []received) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.Event.ID]++
	}
	return m
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox.events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func key(i int) string { return fmt.Sprintf("k%03d", i) }
