package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/broker"
	"github.com/cairn-dev/cairn/pgserver"
	"github.com/cairn-dev/cairn/telemetry"
)

// infra is the database and broker Cairn runs on: embedded ones it started
// itself, the user's own, or (in tests) a pool and a connection it was given
// and leaves open.
type infra struct {
	pg      *pgserver.Server // nil when CAIRN_DATABASE_URL is set
	natsd   *broker.Embedded // nil when CAIRN_NATS_URL is set
	pool    *pgxpool.Pool
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	lentDB  bool // pool was given: not ours to close
	lentBus bool // nc was given: not ours to close
	// side are pools of their own for parts of Cairn that must not compete
	// with the API for connections (see sidePool); always ours to close.
	side []*pgxpool.Pool

	// The relay's own: a small pool, so that its lease renewals never wait
	// behind request handlers, and a NATS connection without a reconnect
	// buffer, so that no publish of its is held back and sent after its
	// term ended.
	relayPool *pgxpool.Pool
	relayNC   *nats.Conn // nil when nc was lent: the relay shares it
	relayJS   jetstream.JetStream
}

// leaderSession is the session of a pool whose connections write rows the
// next leader needs (the relay's cursor, the lake's head).
//
// PostgreSQL ends a transaction its client left waiting for 5 s: pgx sends
// a batch as one implicit transaction, and a leader frozen or cut off
// between two of its messages would otherwise keep those rows locked until
// TCP gives up. That is not enough on its own: a session blocked writing
// to a client that no longer reads (a frozen process's full socket buffer)
// is not idle, and zero-window probes are answered for ever. So each
// session is named for its replica (leaderAppName, evictSQL), and a new relay leader ends
// the sessions of every other replica's relay and lake before it starts.
func leaderSession(role string) map[string]string {
	return map[string]string{
		"idle_in_transaction_session_timeout": "5s",
		"application_name":                    leaderAppName(role, holder()),
	}
}

// leaderAppName is "cairn/relay <holder>", within PostgreSQL's 63 bytes;
// the slash keeps it apart from the other pools' names ("cairn lake
// export"), which a new leader must not end.
func leaderAppName(role, holder string) string {
	name := "cairn/" + role + " " + holder
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// evictSQL ends the relay and lake sessions of every replica but this one
// (the first two parameters name this one's). A role may end sessions of
// its own role without privileges; where it may not, the new leader logs
// it and relies on the timeouts alone.
const evictSQL = `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND (application_name LIKE 'cairn/relay %' OR application_name LIKE 'cairn/lake %')
  AND application_name <> ALL (ARRAY[$1, $2])`

// openDatabase starts the embedded PostgreSQL if needed and opens a pool,
// or uses the pool it is given.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger, pool *pgxpool.Pool) (*infra, error) {
	in := &infra{log: log}
	if pool != nil {
		in.pool, in.lentDB = pool, true
		var err error
		if in.relayPool, err = in.sidePool(ctx, "relay", 4, leaderSession("relay")); err != nil {
			return nil, err
		}
		return in, nil
	}
	url := cfg.DatabaseURL
	if cfg.EmbeddedPostgres() {
		dir, err := filepath.Abs(filepath.Join(cfg.DataDir, "postgres"))
		if err != nil {
			return nil, fmt.Errorf("CAIRN_DATA_DIR: %w", err)
		}
		log.Info("starting embedded PostgreSQL", "data_dir", dir)
		in.pg, err = pgserver.Start(ctx, pgserver.Config{DataDir: dir, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		url = in.pg.URL()
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		in.close(context.Background())
		return nil, fmt.Errorf("CAIRN_DATABASE_URL: %w", err)
	}
	pcfg.MaxConns = int32(cfg.DatabaseMaxConns)
	if telemetry.TracingEnabled() {
		// Every statement run within a trace gets a span (the side pools
		// copy this configuration).
		pcfg.ConnConfig.Tracer = telemetry.PgxTracer{}
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "cairn"
	// Cairn's statements are short OLTP lookups by key. With custom plans
	// PostgreSQL re-planned the outbox insert on every call (31,997 plans
	// for 31,965 calls in the ledger benchmark, a quarter of its time).
	if _, set := pcfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		pcfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	// A transaction left idle for 5 s by its client is ended: a replica
	// frozen or cut off in the middle of one (an API request between two
	// round trips) would otherwise hold its rows, and its transaction id,
	// until TCP gives up; the relay publishes in commit order and waits for
	// every transaction below its horizon, so one such transaction stops
	// all publishing (TestFaultLeaderPostgresBlackhole: the new leader
	// published only when the cut healed).
	if _, set := pcfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		pcfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "5s"
	}
	pcfg.ConnConfig.DialFunc = hardenedDialer().DialContext
	in.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		in.relayPool, err = in.sidePool(ctx, "relay", 4, leaderSession("relay"))
	}
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = waitForDatabase(pctx, in.pool, log)
		cancel()
	}
	if err != nil {
		in.close(context.Background())
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return in, nil
}

// waitForDatabase retries a ping so a database that is still starting (a
// container beside us) does not fail start-up.
// It says so once, so a wrong URL is not 30 silent seconds.
func waitForDatabase(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	for warned := false; ; warned = true {
		err := pool.Ping(ctx)
		if err == nil {
			return nil
		}
		if !warned {
			deadline, _ := ctx.Deadline()
			log.Warn("PostgreSQL is not reachable yet; retrying", "err", err, "for", time.Until(deadline).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// openBroker starts the embedded NATS server if needed and connects, or
// uses the connection it is given, and declares the streams.
func (in *infra) openBroker(ctx context.Context, cfg config.Config, nc *nats.Conn) error {
	var err error
	if nc != nil {
		in.nc, in.lentBus = nc, true
	} else if cfg.EmbeddedNATS() {
		dir, aerr := filepath.Abs(filepath.Join(cfg.DataDir, "nats"))
		if aerr != nil {
			return fmt.Errorf("CAIRN_DATA_DIR: %w", aerr)
		}
		subs, serr := cfg.Subscribers()
		if serr != nil {
			return serr
		}
		systems := make([]broker.System, 0, len(subs))
		names := make([]string, 0, len(subs))
		for _, s := range subs {
			systems = append(systems, broker.System{Name: s.Name, Password: s.Password})
			names = append(names, s.Name)
		}
		in.log.Info("starting embedded NATS", "store_dir", dir, "listen", cfg.NATSListen, "sync_interval", cfg.NATSSyncInterval,
			"outside_systems", names)
		in.natsd, err = broker.StartEmbeddedContext(ctx, broker.EmbeddedConfig{
			StoreDir:     dir,
			Listen:       cfg.NATSListen,
			SyncInterval: cfg.NATSSyncInterval,
			Systems:      systems,
			Logger:       in.log,
		})
		if err != nil {
			return fmt.Errorf("embedded NATS (CAIRN_NATS_LISTEN=%s): %w", cfg.NATSListen, err)
		}
		in.nc, err = in.natsd.Connect("cairn", in.log)
		if err == nil {
			in.relayNC, err = in.natsd.Connect("cairn-relay", in.log, relayNATSOptions()...)
		}
	} else {
		in.nc, err = broker.Connect(cfg.NATSURL, "cairn", in.log, nats.SetCustomDialer(hardenedDialer()))
		if err == nil {
			in.relayNC, err = broker.Connect(cfg.NATSURL, "cairn-relay", in.log, relayNATSOptions()...)
		}
	}
	if err != nil {
		return err
	}
	// Append refuses an event this server would not take (outbox does not
	// talk to NATS itself).
	outbox.SetMaxPayload(in.nc.MaxPayload())
	relayNC := in.relayNC
	if relayNC == nil {
		relayNC = in.nc
	}
	if in.relayJS, err = jetstream.New(relayNC); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	in.js, err = jetstream.New(in.nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := broker.EnsureStreams(sctx, in.js, cfg.NATSReplicas); err != nil {
		return err
	}
	return boundEvents(sctx, in.js, cfg.EventsMaxAge)
}

// boundEvents applies CAIRN_EVENTS_MAX_AGE to the EVENTS stream: the lake
// keeps the history, so the stream need only keep what live subscribers
// may still have to catch up on. Zero leaves it unbounded.
func boundEvents(ctx context.Context, js jetstream.JetStream, maxAge time.Duration) error {
	if maxAge <= 0 {
		return nil
	}
	s, err := js.Stream(ctx, outbox.PublicStream)
	if err != nil {
		return fmt.Errorf("CAIRN_EVENTS_MAX_AGE: stream %s: %w", outbox.PublicStream, err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxAge = maxAge
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("CAIRN_EVENTS_MAX_AGE=%s: update stream %s: %w", maxAge, outbox.PublicStream, err)
	}
	return nil
}

// relayNATSOptions are those of the relay's connection: no reconnect
// buffer (a publish while disconnected fails at once instead of being sent
// on reconnect, perhaps after the term that made it ended), and the
// hardened dialer.
func relayNATSOptions() []nats.Option {
	return []nats.Option{
		nats.ReconnectBufSize(-1),
		nats.SetCustomDialer(hardenedDialer()),
	}
}

// sqlDB is a database/sql view of the pool for goose.
func (in *infra) sqlDB() *sql.DB { return stdlib.OpenDBFromPool(in.pool) }

// closeWithin closes everything, giving embedded servers timeout to stop.
func (in *infra) closeWithin(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	in.close(ctx)
}

// close releases everything in reverse order of opening.
func (in *infra) close(ctx context.Context) {
	if in.relayNC != nil {
		in.relayNC.Close()
	}
	if in.nc != nil && !in.lentBus {
		if err := in.nc.Drain(); err != nil {
			in.log.Warn("drain NATS connection", "err", err)
		}
		for i := 0; i < 50 && !in.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if in.natsd != nil {
		in.natsd.Shutdown()
		in.log.Info("embedded NATS stopped")
	}
	for _, p := range in.side {
		p.Close()
	}
	if in.pool != nil && !in.lentDB {
		in.pool.Close()
	}
	if in.pg != nil {
		if err := in.pg.Stop(ctx); err != nil {
			in.log.Error("stop embedded PostgreSQL", "err", err)
		} else {
			in.log.Info("embedded PostgreSQL stopped")
		}
	}
}

// evictOtherLeaders is the relay's OnTerm: see leaderSession.
func evictOtherLeaders(log *slog.Logger) func(ctx context.Context, conn *pgx.Conn) {
	me := holder()
	return func(ctx context.Context, conn *pgx.Conn) {
		var n int64
		if err := conn.QueryRow(ctx, evictSQL, leaderAppName("relay", me), leaderAppName("lake", me)).Scan(&n); err != nil {
			log.Warn("relay: could not end other replicas' relay and lake sessions; a frozen one may hold rows until its transaction times out", "err", err)
			return
		}
		if n > 0 {
			log.Info("relay: ended other replicas' relay and lake sessions", "sessions", n)
		}
	}
}
