package integration_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// appendEvents commits n public events in transactions of perTx events.
func appendEvents(t testing.TB, pool *pgxpool.Pool, typ string, n, perTx int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for done := 0; done < n; done += perTx {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			evs := make([]outbox.Event, 0, perTx)
			for i := done; i < done+perTx && i < n; i++ {
				evs = append(evs, outbox.Event{Type: typ, Key: fmt.Sprintf("k%d", i%97), Data: map[string]int{"n": i}})
			}
			a, err := outbox.Append(ctx, tx, evs...)
			for _, x := range a {
				ids = append(ids, x.ID)
			}
			return err
		})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	return ids
}

// writer commits one event per transaction at a steady pace until stopped,
// recording the ids of the transactions that committed.
type writer struct {
	mu      sync.Mutex
	ids     []string
	stop    chan struct{}
	done    chan struct{}
	paused  atomic.Bool
	failed  atomic.Int64
	counter int
}

func startWriter(t testing.TB, pool *pgxpool.Pool, every time.Duration) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			if w.paused.Load() {
				continue
			}
			w.counter++
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var id string
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				a, err := outbox.Append(ctx, tx, outbox.Event{Type: "it.ticked.v1", Key: fmt.Sprintf("k%d", w.counter%13), Data: map[string]int{"n": w.counter}})
				if err == nil {
					id = a[0].ID
				}
				return err
			})
			cancel()
			if err != nil {
				w.failed.Add(1)
				continue
			}
			w.mu.Lock()
			w.ids = append(w.ids, id)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *writer) IDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ids...)
}

// streamMsgs returns how many messages a stream holds.
func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs
}

// streamIDs returns how often each event id occurs in a stream.
func streamIDs(t testing.TB, js jetstream.JetStream, name string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %s/%d: %v", name, seq, err)
		}
		out[m.Header.Get(jetstream.MsgIDHeader)]++
	}
	return out
}

// exactlyOnce fails the test unless the stream holds each id exactly once
// and nothing else.
func exactlyOnce(t testing.TB, js jetstream.JetStream, stream string, ids []string) {
	t.Helper()
	got := streamIDs(t, js, stream)
	missing, dup := 0, 0
	for _, id := range ids {
		switch got[id] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(got) != len(ids) {
		t.Fatalf("stream %s: %d committed, %d distinct in stream, %d missing, %d duplicated", stream, len(ids), len(got), missing, dup)
	}
}

func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
	return 0
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
