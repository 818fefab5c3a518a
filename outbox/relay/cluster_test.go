package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

// Per-key order and exactly-once hold while the three-node NATS cluster
// under the relay changes stream leaders and restarts nodes one by one, as
// a rolling restart does: a publish lost with the old leader must not let
// a later event of its key land before it.
// It runs with one message per ack, and with atomic batches.
func TestOrderThroughStreamLeaderChanges(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		name := map[bool]string{false: "messages", true: "atomic_batches"}[atomic]
		t.Run(name, func(t *testing.T) { orderThroughStreamLeaderChanges(t, atomic) })
	}
}

func orderThroughStreamLeaderChanges(t *testing.T, atomic bool) {
	db := testenv.MustDB(t)
	cl := testenv.SharedNATSCluster(t)
	if err := cl.WaitHealthy(90 * time.Second); err != nil {
		t.Fatalf("NATS cluster: %v\n%s", err, cl.LogTail(20))
	}
	admin, adminJS := cl.Connect(t)
	cl.ResetStreams(t, adminJS, 3)
	nc, err := nats.Connect(cl.URL(), nats.ReconnectBufSize(-1), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Writers keep committing (ten events per transaction, flat out, up to
	// 70,000), and the relay starts behind a backlog: it drains with full
	// pipelines of publishes in flight, so a leader change always finds
	// some. (At a rate the relay keeps up with, too few are in flight for
	// a lost one to be passed often enough to test.)
	w := startKeyedWriters(t, db.Pool, 4, 40, 70000)
	waitFor(t, time.Minute, "a backlog", func() bool { return w.total.Load() >= 30000 })
	r, _ := startRelay(t, db.Pool, js, relay.Options{AckTimeout: 2 * time.Second, MaxBackoff: 300 * time.Millisecond, AtomicBatches: atomic})
	waitFor(t, 10*time.Second, "a leader", func() bool { return r.State() == relay.Leader })
	// Step the stream leaders down every 150 ms, and restart the EVENTS
	// leader's node every 8th time, until the relay has caught up or 80
	// leader changes have passed (a slow machine, or -race), then let it
	// finish.
	restarts := 0
	drained := func() bool {
		m, err := r.Metrics(context.Background())
		return err == nil && m.Backlog == 0 && w.total.Load() >= 70000
	}
	for i := 0; i < 80 && !drained(); i++ {
		time.Sleep(150 * time.Millisecond)
		stream := outbox.PublicStream
		if i%3 == 2 {
			stream = outbox.InternalStream
		}
		_ = cl.StepDown(admin, stream) // "no leader right now" is fine too
		if i%8 == 7 {
			if n := cl.StreamLeader(adminJS, outbox.PublicStream); n >= 0 {
				cl.Restart(t, n)
				restarts++
			}
		}
	}
	waitFor(t, 3*time.Minute, "the relay to catch up after the leader changes", drained)
	committed := w.stop(t)
	m, err := r.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events committed over %d keys; %d node restarts; the relay saw %d publish errors", len(committed), 40, restarts, m.PublishErrors)
	if m.PublishErrors == 0 {
		t.Fatal("no publish ever failed: the leader changes did not reach the relay, and the test proves nothing")
	}
	public := readStream(t, adminJS, outbox.PublicStream, w.count(outbox.Public), time.Minute)
	internal := readStream(t, adminJS, outbox.InternalStream, w.count(outbox.Internal), time.Minute)
	checkOrderAndOnce(t, committed, append(public, internal...))
}

// keyedWriters commit single-event transactions, each writer over keys of
// its own, numbering each key's events 1, 2, 3...: per key, that is commit
// order.
type keyedWriters struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	ids   map[string]keyedEvent
	byVis [2]atomic.Int64
	total atomic.Int64
}

type keyedEvent struct {
	key     string
	version int
	vis     outbox.Visibility
}

func startKeyedWriters(t *testing.T, pool *pgxpool.Pool, writers, keys, limit int) *keyedWriters {
	t.Helper()
	w := &keyedWriters{stopc: make(chan struct{}), ids: map[string]keyedEvent{}}
	ctx := context.Background()
	for g := range writers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			version := map[string]int{}
			var n int
			// Flat out, ten events per transaction, up to limit: the
			// relay then drains a backlog while leaders change, with a
			// full pipeline of publishes in flight (at a rate it keeps up
			// with, too few are in flight for a lost one to be passed).
			for w.total.Load() < int64(limit) {
				select {
				case <-w.stopc:
					return
				default:
				}
				evs := make([]outbox.Event, 10)
				done := make([]keyedEvent, 10)
				for j := range evs {
					k := fmt.Sprintf("key-%d", g+writers*(n%(keys/writers)))
					typ, vis := "test.keyed.v1", outbox.Public
					if n%5 == 4 {
						typ, vis = "test.keyed_internal.v1", outbox.Internal
					}
					n++
					version[k]++
					evs[j] = outbox.Event{Type: typ, Key: k, Data: testData{Version: version[k]}}
					done[j] = keyedEvent{key: k, version: version[k], vis: vis}
				}
				var ids []outbox.Appended
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					var err error
					ids, err = outbox.Append(ctx, tx, evs...)
					return err
				})
				if err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				w.mu.Lock()
				for j, a := range ids {
					w.ids[a.ID] = done[j]
					w.byVis[done[j].vis].Add(1)
				}
				w.mu.Unlock()
				w.total.Add(int64(len(ids)))
			}
		}()
	}
	return w
}

func (w *keyedWriters) stop(t *testing.T) map[string]keyedEvent {
	t.Helper()
	close(w.stopc)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ids
}

func (w *keyedWriters) count(v outbox.Visibility) int { return int(w.byVis[v].Load()) }

// readStream waits until stream holds want messages, lingers so that a
// duplicate would show, and returns every message in stream order. Each
// JetStream request gets a few seconds and is retried: a request sent while
// the cluster moves its meta leader can go unanswered.
func readStream(t *testing.T, js jetstream.JetStream, stream string, want int, timeout time.Duration) []received {
	t.Helper()
	info := func() (*jetstream.StreamInfo, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		return s.Info(ctx)
	}
	deadline := time.Now().Add(timeout)
	for {
		in, err := info()
		if err == nil && in.State.Msgs >= uint64(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s holds %v messages after %s, want %d (err %v)", stream, msgsOf(in), timeout, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for attempt := 0; ; attempt++ {
		out, err := readAll(js, stream)
		if err == nil {
			return out
		}
		if attempt == 5 {
			t.Fatalf("read %s: %v", stream, err)
		}
	}
}

func readAll(js jetstream.JetStream, stream string) ([]received, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	// Read up to the last sequence the stream's leader has: an ordered
	// consumer's pending count comes from the server hosting it, which,
	// a follower just restarted, may not have the tail yet and count 0
	// pending before the end.
	in, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := in.State.LastSeq
	if in.State.Msgs == 0 {
		return nil, nil
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	it, err := oc.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	var out []received
	for {
		nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			return nil, err
		}
		var ce outbox.CloudEvent
		if err := json.Unmarshal(m.Data(), &ce); err != nil {
			return nil, fmt.Errorf("message on %s is not a CloudEvent: %w", m.Subject(), err)
		}
		out = append(out, received{Subject: m.Subject(), Event: ce})
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		if md.Sequence.Stream >= last {
			return out, nil
		}
	}
}

func msgsOf(info *jetstream.StreamInfo) any {
	if info == nil {
		return "?"
	}
	return info.State.Msgs
}

// checkOrderAndOnce checks that every committed event arrived exactly once,
// nothing else did, and each key's events are in commit order within each
// stream.
func checkOrderAndOnce(t *testing.T, committed map[string]keyedEvent, got []received) {
	t.Helper()
	seen := map[string]int{}
	last := map[string]int{} // key/subject -> last version seen
	bad := 0
	for _, r := range got {
		seen[r.Event.ID]++
		want, ok := committed[r.Event.ID]
		if !ok {
			t.Errorf("unknown event %s in the stream", r.Event.ID)
			bad++
			continue
		}
		if seen[r.Event.ID] > 1 {
			t.Errorf("event %s (key %s, version %d) is in the stream %d times", r.Event.ID, want.key, want.version, seen[r.Event.ID])
			bad++
			continue
		}
		lane := r.Subject + "/" + want.key
		if want.version <= last[lane] {
			t.Errorf("key %s on %s: version %d after version %d", want.key, r.Subject, want.version, last[lane])
			bad++
		}
		last[lane] = want.version
		if bad > 20 {
			t.Fatal("too many errors")
		}
	}
	for id, e := range committed {
		if seen[id] == 0 {
			t.Errorf("event %s (key %s, version %d) never arrived", id, e.key, e.version)
			if bad++; bad > 20 {
				t.Fatal("too many errors")
			}
		}
	}
}
