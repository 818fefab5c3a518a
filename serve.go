package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/web"
)

// serve runs Cairn until ctx is cancelled (SIGINT/SIGTERM), then shuts down
// in order: stop accepting requests and finish those in flight, let the
// relay flush, then stop the broker and the database.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) (err error) {
	log.Info("cairn starting", "version", fullVersion(), "embedded_postgres", cfg.EmbeddedPostgres(), "embedded_nats", cfg.EmbeddedNATS())
	in, err := openDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer in.closeWithin(cfg.ShutdownTimeout)

	db := in.sqlDB()
	defer db.Close()
	migrator, err := migrations.NewProvider(db)
	if err != nil {
		return err
	}
	applied, err := migrator.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	log.Info("migrations applied", "new", len(applied))

	if err := in.openBroker(ctx, cfg); err != nil {
		return err
	}

	host, _ := os.Hostname()
	rl := relay.New(in.relayPool, in.relayJS, relay.Options{
		// Keep rows until JetStream has fsynced them: its timer fires every
		// sync interval, after the previous sync finished.
		DeleteDelay: 2*cfg.NATSSyncInterval + time.Second,
		Name:        fmt.Sprintf("%s/%d", host, os.Getpid()),
		Logger:      log,
	})

	e := web.NewServer(log)
	subs := &outbox.Subscriptions{}
	deps := modules.Deps{Pool: in.pool, API: e.Group("/api/v1"), Log: log, Config: cfg, Consumers: subs}
	var names []string
	for _, build := range moduleList {
		m, err := build(deps)
		if err != nil {
			return fmt.Errorf("start module: %w", err)
		}
		names = append(names, m.Name())
	}
	consumers := consumer.New(in.pool, in.js, subs.All(), consumer.Options{Logger: log})
	consumers.RegisterAdmin(e.Group("/api/v1/admin"), cfg.AdminToken)
	checkers := []web.Checker{
		{Name: "database", Check: func(ctx context.Context) error { return in.pool.Ping(ctx) }},
		{Name: "migrations", Check: func(ctx context.Context) error {
			pending, err := migrator.HasPending(ctx)
			if err == nil && pending {
				err = errors.New("migrations are pending")
			}
			return err
		}},
		{Name: "nats", Check: func(context.Context) error {
			if s := in.nc.Status(); s != nats.CONNECTED {
				return fmt.Errorf("connection is %s", s)
			}
			return nil
		}},
		{Name: "relay", Check: func(context.Context) error {
			if s := rl.State(); s != relay.Leader && s != relay.Standby {
				return fmt.Errorf("relay is %s (lease: %s)", s, rl.Lease().State)
			}
			return nil
		}},
	}
	web.RegisterHealth(e, checkers)
	web.RegisterConsole(e, statusFunc(names, checkers, rl))
	web.RegisterActivatePage(e)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("CAIRN_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	relayCtx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = rl.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayDone }()
	consumersCtx, stopConsumers := context.WithCancel(context.Background())
	consumersDone := make(chan struct{})
	go func() { defer close(consumersDone); _ = consumers.Run(consumersCtx) }()
	// Stopped before the relay: a handler's events still get published.
	defer func() { stopConsumers(); <-consumersDone }()

	httpErr := make(chan error, 1)
	go func() {
		e.Listener = ln
		httpErr <- e.Start("")
	}()
	log.Info("cairn is up", "http", ln.Addr().String(), "modules", names, "console", cfg.PublicURL+"/")

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpErr:
		return fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := e.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	stopConsumers()
	<-consumersDone
	if rl.State() == relay.Leader {
		select {
		case <-rl.Drained():
			log.Info("relay flushed the outbox")
		case <-sctx.Done():
			log.Warn("relay did not flush before the shutdown timeout; the next leader publishes the rest")
		}
	}
	return nil
}

func statusFunc(names []string, checkers []web.Checker, rl *relay.Relay) web.StatusFunc {
	return func(ctx context.Context) web.Status {
		ready, checks := web.RunChecks(ctx, checkers)
		m, err := rl.Metrics(ctx)
		rs := web.RelayStatus{
			State: string(m.State), Backlog: m.Backlog, OldestAgeSeconds: m.OldestAgeSeconds,
			Published: m.Published, PublishErrors: m.PublishErrors, Idles: m.Idles, LastError: m.LastError,
			Parked: m.Parked,
			Lease: web.LeaseStatus{State: string(m.Lease.State), Holder: m.Lease.Holder, Token: m.Lease.Token,
				ValidForSeconds: m.Lease.ValidFor.Seconds(), LastError: m.Lease.LastError},
		}
		if err != nil && rs.LastError == "" {
			rs.LastError = err.Error()
		}
		if names == nil {
			names = []string{}
		}
		return web.Status{Version: fullVersion(), Modules: names, Ready: ready, Checks: checks, Relay: rs, Time: time.Now().UTC()}
	}
}
