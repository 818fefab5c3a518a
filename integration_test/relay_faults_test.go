package integration_test

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func externalEnv(db *testenv.DB, nt *testenv.NATS) map[string]string {
	return map[string]string{
		"CAIRN_DATABASE_URL":       db.URL,
		"CAIRN_NATS_URL":           nt.Server.URLWithCredentials(),
		"CAIRN_NATS_SYNC_INTERVAL": "100ms",
	}
}

// A relay process killed with SIGKILL in the middle of draining is replaced
// by a new one; every event ends up in the stream exactly once.
func TestRelayKilledMidDrain(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	const n = 30000
	ids := appendEvents(t, db.Pool, "it.drained.v1", n, 500)

	first := startCairn(t, externalEnv(db, nt))
	waitUntil(t, 60*time.Second, "the drain to be under way", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= n/4
	})
	first.Kill9()
	at := streamMsgs(t, nt.JS, outbox.PublicStream)
	t.Logf("killed the relay with %d of %d events published", at, n)
	if at >= n {
		t.Fatalf("the drain finished before the kill; the test proves nothing")
	}
	startCairn(t, externalEnv(db, nt))
	waitUntil(t, 60*time.Second, "all events", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= n
	})
	time.Sleep(time.Second) // a late duplicate would land now
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
}

// With two replicas, one leads; when it is killed the other takes over
// once the lease expires (required: within 15 s), and nothing committed
// meanwhile is lost or duplicated.
func TestLeaderKilledStandbyTakesOver(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	a := startCairn(t, externalEnv(db, nt))
	a.WaitLog("relay is leader", 10*time.Second)
	b := startCairn(t, externalEnv(db, nt))
	w := startWriter(t, db.Pool, 5*time.Millisecond)
	time.Sleep(time.Second)
	if _, ok := b.logs.find("relay is leader"); ok {
		t.Fatal("two relays lead at once")
	}
	a.Kill9()
	killed := time.Now()
	b.WaitLog("relay is leader", 20*time.Second)
	takeover := time.Since(killed)
	t.Logf("standby took over %s after the leader was killed", takeover.Round(time.Millisecond))
	if takeover > 15*time.Second {
		t.Fatalf("takeover took %s, want at most 15s", takeover)
	}
	time.Sleep(time.Second)
	w.Stop()
	ids := w.IDs()
	waitUntil(t, 30*time.Second, "all events", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= uint64(len(ids))
	})
	time.Sleep(500 * time.Millisecond)
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
	inKeyOrder(t, nt.JS, outbox.PublicStream)
}

// While NATS is down the relay backs off; when it returns, everything
// committed meanwhile is published once.
func TestNATSOutage(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	p := startCairn(t, externalEnv(db, nt))
	p.WaitLog("relay is leader", 10*time.Second)
	w := startWriter(t, db.Pool, 5*time.Millisecond)
	time.Sleep(time.Second)
	nt.Stop()
	time.Sleep(3 * time.Second)
	nt.Restart(t)
	time.Sleep(time.Second)
	w.Stop()
	ids := w.IDs()
	waitUntil(t, 60*time.Second, "all events after the outage", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= uint64(len(ids))
	})
	time.Sleep(500 * time.Millisecond)
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
	logs := p.logs.String()
	if !strings.Contains(logs, "nats disconnected") || !strings.Contains(logs, "nats reconnected") {
		t.Fatal("cairn never saw NATS go away and come back; the test proves nothing")
	}
}

// PostgreSQL restarting under the relay: it reconnects, re-elects itself
// and publishes everything once.
func TestPostgresRestart(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	p := startCairn(t, externalEnv(db, nt))
	p.WaitLog("relay is leader", 10*time.Second)
	before := appendEvents(t, db.Pool, "it.before.v1", 2000, 50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := testenv.Server(t).Restart(ctx); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
	db.Pool.Reset()
	after := appendEvents(t, db.Pool, "it.after.v1", 2000, 50)
	ids := append(before, after...)
	waitUntil(t, 60*time.Second, "all events after the restart", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= uint64(len(ids))
	})
	time.Sleep(500 * time.Millisecond)
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
}

// A leader frozen with SIGSTOP keeps its sockets open, so PostgreSQL and
// NATS see nothing wrong; its lease expires and the standby takes over
// (required: within 15 s). After SIGCONT the old leader finds its term
// over and publishes nothing: every event is in the stream once, per key
// in commit order.
func TestLeaderFrozenStandbyTakesOver(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	a := startCairn(t, externalEnv(db, nt))
	a.WaitLog("relay is leader", 10*time.Second)
	b := startCairn(t, externalEnv(db, nt))
	w := startWriter(t, db.Pool, 5*time.Millisecond)
	time.Sleep(time.Second)
	if err := syscall.Kill(a.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	b.WaitLog("relay is leader", 20*time.Second)
	takeover := time.Since(frozen)
	t.Logf("standby took over %s after the leader was frozen", takeover.Round(time.Millisecond))
	if takeover > 15*time.Second {
		t.Fatalf("takeover took %s, want at most 15s", takeover)
	}
	time.Sleep(2 * time.Second)
	if err := syscall.Kill(a.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a.WaitLog("lease term ended", 10*time.Second)
	time.Sleep(2 * time.Second) // a runs again meanwhile
	w.Stop()
	ids := w.IDs()
	waitUntil(t, 30*time.Second, "all events", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= uint64(len(ids))
	})
	time.Sleep(500 * time.Millisecond)
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
	inKeyOrder(t, nt.JS, outbox.PublicStream)
	if n := strings.Count(a.logs.String(), "relay is leader"); n != 1 {
		t.Fatalf("the frozen leader led %d times; once, before it was frozen, expected", n)
	}
}

// inKeyOrder checks that, per key, the writer's counter grows along the
// stream: commit order (startWriter commits one event at a time).
func inKeyOrder(t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := oc.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	last := map[string]int{}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		var ce struct {
			Subject string `json:"subject"`
			Data    struct {
				N int `json:"n"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data(), &ce); err != nil {
			t.Fatal(err)
		}
		if ce.Data.N <= last[ce.Subject] {
			t.Fatalf("key %s: event %d after event %d", ce.Subject, ce.Data.N, last[ce.Subject])
		}
		last[ce.Subject] = ce.Data.N
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.NumPending == 0 {
			return
		}
	}
}
