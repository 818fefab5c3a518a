package relay_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

// A leader cut off from PostgreSQL and NATS at once (every socket open,
// nothing getting through) loses its lease after the TTL, and a standby
// takes over and publishes. When the paths come back, what the old leader
// had sent and what sat in its buffers arrives late: its publishes must be
// refused (here JetStream's duplicate window is too short to absorb them:
// only the chain of expected sequences can), and its database writes too
// (the lease token). Every event is then in the stream once, per key in
// commit order.
func TestCutOffLeaderIsFenced(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	for _, name := range []string{outbox.PublicStream, outbox.InternalStream} {
		s, err := nt.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.Duplicates = 100 * time.Millisecond
		if _, err := nt.JS.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	v := newVersioned()
	v.commit(t, db.Pool, 20, 6000)

	// The old leader reaches both servers through proxies.
	network, addr := pgTarget(t, db.Pool)
	pgProxy := startProxy(t, network, addr)
	natsProxy := startProxy(t, "tcp", strings.TrimPrefix(nt.URL(), "nats://"))
	acfg := db.Pool.Config().Copy()
	acfg.ConnConfig.Host, acfg.ConnConfig.Port = "127.0.0.1", portOf(t, pgProxy.Addr())
	acfg.ConnConfig.Fallbacks = nil
	apool, err := pgxpool.NewWithConfig(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apool.Close)
	anc, err := nats.Connect("nats://"+natsProxy.Addr(), nats.UserInfo("cairn", natsPassword(nt)), nats.ReconnectBufSize(-1), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(anc.Close)
	ajs, err := jetstream.New(anc)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := startRelay(t, apool, ajs, relay.Options{Name: "a", BatchSize: 100, LeaseTTL: time.Second, AckTimeout: 30 * time.Second, DeleteDelay: time.Hour})
	// Cut a off while it is idle, every ack in: cut in the middle of a
	// round, its acks are held too and a waits for them (AckTimeout) and
	// sends nothing more, so nothing of its would be held to arrive late.
	waitFor(t, 30*time.Second, "a to publish all and record it", func() bool {
		m, err := a.Metrics(ctx)
		return err == nil && m.Backlog == 0
	})
	// NATS first: the publishes a sends from now on are held, as in a
	// frozen process's buffers; then PostgreSQL, which ends its term.
	natsProxy.Pause()
	v.commit(t, db.Pool, 20, 600)
	waitFor(t, 30*time.Second, "a to send publishes that are held", func() bool { return natsProxy.Held() > 1024 })
	pgProxy.Pause()
	cutAt := streamCount(t, nt.JS, outbox.PublicStream)
	b, _ := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "b", LeaseTTL: time.Second, StandbyInterval: 100 * time.Millisecond})
	took := time.Now()
	waitFor(t, 10*time.Second, "b to take over", func() bool { return b.State() == relay.Leader })
	t.Logf("b took over %s after a was cut off, with %d events published and %d bytes of a's held", time.Since(took).Round(time.Millisecond), cutAt, natsProxy.Held())
	if a.State() == relay.Leader {
		t.Fatal("a still leads with its term expired")
	}
	waitFor(t, 30*time.Second, "b to publish the rest", func() bool {
		m, err := b.Metrics(ctx)
		return err == nil && m.Backlog == 0
	})
	time.Sleep(300 * time.Millisecond) // past the duplicate window
	pgProxy.Resume()
	natsProxy.Resume()
	time.Sleep(2 * time.Second) // a's late writes land, or not
	checkVersioned(t, nt, v)
	var token int64
	if err := db.Pool.QueryRow(ctx, `SELECT token FROM outbox.relay_cursor`).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if bt := b.Lease().Token; token != bt {
		t.Fatalf("the cursor was last written with token %d; b holds %d", token, bt)
	}
}

// pgTarget is where the pool's connections go: a Unix socket or host:port.
func pgTarget(t *testing.T, pool *pgxpool.Pool) (string, string) {
	t.Helper()
	cc := pool.Config().ConnConfig
	if strings.HasPrefix(cc.Host, "/") {
		return "unix", filepath.Join(cc.Host, ".s.PGSQL."+strconv.Itoa(int(cc.Port)))
	}
	return "tcp", cc.Host + ":" + strconv.Itoa(int(cc.Port))
}

func portOf(t *testing.T, addr string) uint16 {
	t.Helper()
	_, p, err := netSplit(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(n)
}

func natsPassword(nt *testenv.NATS) string {
	u := nt.Server.URLWithCredentials() // nats://cairn:<password>@host:port
	pw := strings.TrimPrefix(u, "nats://cairn:")
	return pw[:strings.LastIndex(pw, "@")]
}

func streamCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A term that has been superseded in outbox.leases (here by hand, as a
// takeover after the term expired would) cannot write the cursor, even
// before its own renewal notices: the write carries its token. It stops at
// its next write instead of at its next renewal.
func TestSupersededTermCannotWriteTheCursor(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	a, _ := startRelay(t, db.Pool, nt.JS, relay.Options{Name: "a", LeaseTTL: 20 * time.Second})
	waitFor(t, 5*time.Second, "a to lead", func() bool { return a.State() == relay.Leader })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := appendOne(ctx, db.Pool, "test.tick.v1", key(i%5), testData{N: i}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, 5*time.Second, "a to publish", func() bool { return streamCount(t, nt.JS, outbox.PublicStream) > 50 })
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox.leases SET token = token + 1, holder = 'intruder', expires_at = now() + interval '1 hour' WHERE name = 'relay'`); err != nil {
		t.Fatal(err)
	}
	var before time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT updated_at FROM outbox.relay_cursor`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	// a persists every 100 ms while it publishes, and renews every 4 s.
	waitFor(t, 2*time.Second, "a to stop leading", func() bool { return a.State() != relay.Leader })
	time.Sleep(500 * time.Millisecond)
	var after time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT updated_at FROM outbox.relay_cursor`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Fatalf("the superseded term wrote the cursor at %s (last write before the takeover: %s)", after, before)
	}
}
