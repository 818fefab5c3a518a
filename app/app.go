// Package app is Cairn assembled: the database and NATS it runs on, the
// platform (relay, consumer runtime, HTTP server) and the business modules.
// New builds it, Start runs it, Close stops it in order. main.go runs it as
// the process; testenv boots it in-process for tests.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/console"
	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/lake/export"
	"github.com/cairn-dev/cairn/outbox/lake/streamseq"
	"github.com/cairn-dev/cairn/outbox/lookup"
	"github.com/cairn-dev/cairn/outbox/privacy"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/outbox/replay"
	"github.com/cairn-dev/cairn/outbox/saga"
	"github.com/cairn-dev/cairn/telemetry"
	"github.com/cairn-dev/cairn/web"
)

// Options tune New; the zero value is what `cairn serve` runs.
type Options struct {
	// Version is logged at start-up and shown by the console.
	Version string
	// Modules are the modules to build, in start order; nil means all
	// (Modules()).
	Modules []modules.Definition
	// Pool, if set, is the database to run on instead of the one the
	// configuration names; Close leaves it open. For tests.
	Pool *pgxpool.Pool
	// NATS, if set, is the connection to publish and consume through
	// instead of the one the configuration names; Close leaves it open.
	NATS *nats.Conn
	// RelayDeleteDelay is how long a published event stays in the outbox;
	// zero means 2 × CAIRN_NATS_SYNC_INTERVAL + 1 s, by when JetStream has
	// fsynced it. Tests lengthen it to read what a use case appended.
	RelayDeleteDelay time.Duration
}

// App is a Cairn process's whole: build it with New, run it with Start,
// stop it with Close.
type App struct {
	cfg          config.Config
	log          *slog.Logger
	version      string
	infra        *infra
	sqlDB        *sql.DB
	migrator     *migrations.Runner
	relay        *relay.Relay
	mover        *lake.Mover // nil with CAIRN_LAKE=off
	lake         *lake.Lake
	exporter     *export.Exporter // nil with CAIRN_LAKE_EXPORT_INTERVAL=0
	exportLeases *pgxpool.Pool
	web          *echo.Echo
	names        []string
	built        map[string]any
	subs         []outbox.Subscription
	consumers    *consumer.Runtime
	forgetter    *privacy.Forgetter
	metrics      *telemetry.Metrics
	// metricsReg is the Prometheus registry: the HTTP middleware's
	// histogram is on it before the modules add their routes.
	metricsReg *prometheus.Registry
	sagas      *saga.Registry
	// projections are the modules' versioned read models, and the
	// runtime that builds, feeds, verifies and switches them.
	projections *projection.Registry
	projRuntime *projection.Runtime
	// handlerPool and leasePool are the consumer runtime's; the saga
	// timer poller runs its steps and its lease on them too.
	handlerPool, leasePool *pgxpool.Pool
	// closing tells modules that shutdown began (modules.Deps.Closing).
	closing chan struct{}
	// background are the modules with work of their own besides requests
	// and events (the ledger sweeps expired idempotency keys).
	background []backgroundModule

	listener       net.Listener
	httpErr        chan error
	stopRelay      func()
	stopMover      func()
	stopExporter   func()
	stopConsumers  func()
	stopTimers     func()
	stopProjection func()
	stopForgetter  func()
	stopBackground func()
	closeOnce      sync.Once
}

// New connects to PostgreSQL (starting the embedded server if the
// configuration asks for it), applies every pending migration, connects to
// NATS and declares the streams, then builds the platform and the modules.
// Nothing runs until Start. Errors: unreachable infrastructure, a failed
// migration, or a module that refuses to start (a bad setting, a handler
// the event catalog refuses); whatever New opened is closed again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (_ *App, err error) {
	if opt.Modules == nil {
		opt.Modules = Modules()
	}
	// Log lines written with a context carry its trace and span ids.
	log = slog.New(telemetry.LogHandler(log.Handler()))
	telemetry.InstallPropagator()
	a := &App{cfg: cfg, log: log, version: opt.Version, built: map[string]any{}, httpErr: make(chan error, 1),
		closing:   make(chan struct{}),
		stopRelay: func() {}, stopMover: func() {}, stopExporter: func() {}, stopConsumers: func() {}, stopTimers: func() {}, stopBackground: func() {},
		stopProjection: func() {}, stopForgetter: func() {}} // until Start runs them
	defer func() {
		if err != nil {
			a.closeInfra()
		}
	}()

	// The database, migrated.
	if a.infra, err = openDatabase(ctx, cfg, log, opt.Pool); err != nil {
		return nil, err
	}
	a.sqlDB = a.infra.sqlDB()
	if err := a.migrate(ctx, opt.Modules); err != nil {
		return nil, err
	}

	// NATS and its streams, and the relay that publishes to them.
	if err := a.infra.openBroker(ctx, cfg, opt.NATS); err != nil {
		return nil, err
	}
	deleteDelay := opt.RelayDeleteDelay
	if deleteDelay <= 0 {
		// Keep rows until JetStream has fsynced them: its timer fires
		// every sync interval, after the previous sync finished.
		deleteDelay = 2*cfg.NATSSyncInterval + time.Second
	}
	a.metricsReg = prometheus.NewRegistry()
	ropt := relay.Options{DeleteDelay: deleteDelay, Name: holder(), Logger: log,
		OnPublished: telemetry.PublishDuration(a.metricsReg), OnTerm: evictOtherLeaders(log)}
	if cfg.LakeOn() {
		// The lake takes the rows the relay used to delete, on a pool of
		// its own so that a move never waits behind the API. JIT off: a
		// move's generic plan can look costly enough to compile, and the
		// compilation cost half a second of CPU per move.
		params := leaderSession("lake")
		params["jit"] = "off"
		lakePool, err := a.infra.sidePool(ctx, "lake", 2, params)
		if err != nil {
			return nil, err
		}
		a.mover, err = lake.NewMover(lakePool, lake.MoverOptions{Lookup: streamseq.Lookup{JS: a.infra.js}, Logger: log})
		if err != nil {
			return nil, err
		}
		ropt.Lake = a.mover
	}
	a.relay = relay.New(a.infra.relayPool, a.infra.relayJS, ropt)
	started := time.Now().UTC() // the relay's counters count from here

	// Events point at the schema of their data, served by Cairn.
	outbox.SetSchemaBase(strings.TrimRight(cfg.PublicURL, "/"))

	// The modules, each adding its routes and handlers.
	a.web = web.NewServer(log)
	web.InstrumentHTTP(a.web, a.metricsReg)
	web.TraceHTTP(a.web)
	subs := &outbox.Subscriptions{}
	folds := &lake.Folds{}
	a.sagas = saga.NewRegistry(subs)
	a.projections = projection.NewRegistry()
	api := a.web.Group("/api/v1")
	deps := modules.Deps{Pool: a.infra.pool, API: api, Pages: a.web.Group(""), Log: log, Config: cfg,
		Consumers: subs, Folds: folds, Sagas: a.sagas, Projections: a.projections, Closing: a.closing}
	for _, def := range opt.Modules {
		before := len(subs.All())
		m, err := def.Build(deps)
		if err != nil {
			return nil, fmt.Errorf("start %w", err)
		}
		// Durable names are contracts shared by all replicas: a module's
		// carry its name, so two modules can never take the same one.
		for _, s := range subs.All()[before:] {
			if !strings.HasPrefix(s.Consumer, def.Name+"_") {
				return nil, fmt.Errorf("start module %s: consumer %s must be named %s_<handler>", def.Name, s.Consumer, def.Name)
			}
		}
		a.names = append(a.names, def.Name)
		a.built[def.Name] = m
		if b, ok := m.(backgroundModule); ok {
			a.background = append(a.background, b)
		}
	}

	// Saga instances this build cannot drive stop start-up: left
	// running, they would wait for ever.
	if err := a.sagas.Check(ctx, a.infra.pool); err != nil {
		return nil, &RefusedError{Err: err}
	}
	a.sagas.RegisterRoutes(api, a.infra.pool, cfg.AdminToken)

	// Every handler says what a replay may do with it, and every older
	// version of an event reaches the newest by upcasting.
	a.subs = subs.All()
	if err := outbox.CheckPolicies(a.subs); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	if err := outbox.CheckVersions(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}

	// The consumer runtime for their handlers, the admin endpoints,
	// readiness and the console.
	a.handlerPool, a.leasePool, err = a.infra.consumerPools(ctx, cfg.DatabaseMaxConns)
	if err != nil {
		return nil, err
	}
	seal, err := sealer(cfg, a.infra.pg != nil, log)
	if err != nil {
		return nil, err
	}
	a.consumers = consumer.New(a.infra.pool, a.infra.js, a.subs, consumer.Options{
		Logger: log, HandlerPool: a.handlerPool, LeasePool: a.leasePool, Holder: holder(), Sealer: seal,
	})
	a.consumers.RegisterAdmin(a.web.Group("/api/v1/admin"), cfg.AdminToken)
	if err := a.openProjections(ctx); err != nil {
		return nil, err
	}
	replay.NewService(a.infra.pool, a.subs, a.consumers.ReplayRequested).Register(api, cfg.AdminToken)
	a.forgetter = privacy.NewForgetter(a.infra.pool, streamseq.Eraser{JS: a.infra.js}, log)
	privacy.Register(api, cfg.AdminToken, a.infra.pool, a.forgetter.Wake)
	a.lake = lake.New(a.infra.pool, folds, log)
	a.lake.Register(api, cfg.AdminToken)
	if err := a.openExporter(ctx); err != nil {
		return nil, err
	}
	a.metrics = telemetry.NewMetrics(telemetry.Sources{
		Version: opt.Version, Relay: a.relay, Consumers: a.consumers, Breakers: a.breakers,
		Pools: map[string]*pgxpool.Pool{"api": a.infra.pool, "handlers": a.handlerPool, "leases": a.leasePool},
		Sagas: a.sagas, DB: a.infra.pool, Lake: a.mover, Exported: a.exported(), Projections: a.projRuntime,
	}, telemetry.Options{Logger: log, Registry: a.metricsReg})
	web.RegisterMetrics(a.web, a.metrics.Handler())
	web.RegisterOpenAPI(a.web, opt.Version)
	web.RegisterEventContracts(a.web, opt.Version, strings.TrimRight(cfg.PublicURL, "/"), natsHost(cfg), web.RequireAdmin(cfg.AdminToken))
	checks := a.checkers()
	reports, _ := a.built["reporting"].(*reporting.Module)
	var consoleReports console.Reports
	if reports != nil {
		consoleReports = reports
	}
	console.Register(a.web, console.Options{
		Token: cfg.AdminToken, Version: opt.Version, Holder: holder(), Consumers: a.consumers, Metrics: a.metrics,
		Checks: checks, Finder: a.finder(), Log: log, Sagas: a.sagas, DB: a.infra.pool, Started: started,
		Lake: a.mover, Exporter: a.exporter, ExportTarget: cfg.LakeExportTarget(),
		Reports: consoleReports, Projections: a.projRuntime,
		Tail: func(ctx context.Context, filter string, fn func(lookup.Event)) error {
			return lookup.Tail(ctx, a.infra.nc, filter, fn)
		},
	})
	web.RegisterHealth(a.web, checks, a.readyDetail)
	web.RegisterConsole(a.web, a.statusFunc(checks))
	return a, nil
}

func (a *App) migrate(ctx context.Context, defs []modules.Definition) error {
	var err error
	if a.migrator, err = Migrator(a.sqlDB, defs); err != nil {
		return err
	}
	applied, err := a.migrator.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	a.log.Info("migrations applied", "new", len(applied))
	return nil
}

// Start listens on CAIRN_HTTP_ADDR and runs the relay, the consumers and
// the HTTP server. Errors: the address cannot be listened on. A later
// failure of the HTTP server arrives on Err.
func (a *App) Start() error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("CAIRN_HTTP_ADDR=%s: %w", a.cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.stopRelay = runUntilStopped(a.relay.Run)
	if a.mover != nil {
		a.stopMover = runUntilStopped(a.mover.Run)
	}
	if a.exporter != nil {
		a.stopExporter = runUntilStopped(func(ctx context.Context) error { return a.exporter.Run(ctx, a.exportLeases) })
	}
	a.stopConsumers = runUntilStopped(a.consumers.Run)
	a.stopProjection = runUntilStopped(a.projRuntime.Run)
	a.stopForgetter = runUntilStopped(func(ctx context.Context) error { return a.forgetter.Run(ctx, a.leasePool, holder()) })
	a.stopTimers = runUntilStopped(func(ctx context.Context) error {
		return a.sagas.RunTimers(ctx, saga.TimerOptions{DB: a.handlerPool, LeasePool: a.leasePool, Holder: holder(), Logger: a.log})
	})
	a.stopBackground = runUntilStopped(func(ctx context.Context) error {
		var wg sync.WaitGroup
		for _, b := range a.background {
			wg.Go(func() { _ = b.Run(ctx) })
		}
		wg.Wait()
		return nil
	})
	go func() {
		a.web.Listener = ln
		a.httpErr <- a.web.Start("")
	}()
	a.log.Info("cairn is up", "http", ln.Addr().String(), "modules", a.names, "console", a.cfg.PublicURL+"/")
	return nil
}

// Err delivers the HTTP server's error if it stops by itself.
func (a *App) Err() <-chan error { return a.httpErr }

// Close shuts down in order, within CAIRN_SHUTDOWN_TIMEOUT: no new requests
// and the ones in flight finished; then no handler running, so every event
// a handler appended is in the outbox; then the relay publishes what is
// left; then NATS and the database (the embedded servers stop). Calling it
// again does nothing.
func (a *App) Close() error {
	a.closeOnce.Do(a.close)
	return nil
}

func (a *App) close() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	// 1. HTTP: no new requests; those in flight finish, long-lived
	// streams told to end first.
	close(a.closing)
	if a.listener != nil {
		if err := a.web.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("http shutdown", "err", err)
		}
	}
	// 2. Handlers and modules' background work: none runs any more, so
	// what they appended is in the outbox.
	a.stopConsumers()
	a.stopProjection()
	a.stopForgetter()
	a.stopTimers()
	a.stopBackground()
	a.stopExporter()
	// 3. Relay: the leader publishes what is left, then stops.
	if a.relay.State() == relay.Leader {
		select {
		case <-a.relay.Drained():
			a.log.Info("relay flushed the outbox")
		case <-ctx.Done():
			a.log.Warn("relay did not flush before the shutdown timeout; the next leader publishes the rest")
		}
	}
	a.stopRelay()
	// The lake's mover stops too: ranges it had not moved yet stay in the
	// outbox, and the next leader moves them.
	a.stopMover()
	// 4. NATS and the database; the embedded servers stop.
	a.closeInfra()
}

// closeInfra closes the database and NATS, and stops embedded servers.
func (a *App) closeInfra() {
	if a.exporter != nil {
		_ = a.exporter.Close()
	}
	if a.sqlDB != nil {
		_ = a.sqlDB.Close()
	}
	if a.infra != nil {
		a.infra.closeWithin(a.cfg.ShutdownTimeout)
	}
}

// holder names this process in leases and logs: host/pid.
func holder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// backgroundModule is a module with work of its own besides requests and
// events; Run returns when ctx ends, before the database closes.
type backgroundModule interface {
	Run(ctx context.Context) error
}

// runUntilStopped runs fn in a goroutine; the function returned cancels its
// context and waits for it to return.
func runUntilStopped(fn func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = fn(ctx) }()
	return func() { cancel(); <-done }
}

// Serve runs Cairn until ctx is cancelled (SIGINT/SIGTERM), then shuts it
// down (Close).
func Serve(ctx context.Context, cfg config.Config, log *slog.Logger, version string) error {
	log.Info("cairn starting", "version", version, "embedded_postgres", cfg.EmbeddedPostgres(), "embedded_nats", cfg.EmbeddedNATS(),
		"tracing", telemetry.TracingEnabled())
	stopTracing, err := telemetry.StartTracing(ctx, version)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	a, err := New(ctx, cfg, log, Options{Version: version})
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.Close()
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-a.Err():
		a.Close()
		return fmt.Errorf("http server: %w", err)
	}
	return a.Close()
}

// URL is the base URL the HTTP server listens on, http://host:port, once
// started.
func (a *App) URL() string {
	if a.listener == nil {
		return ""
	}
	return "http://" + a.listener.Addr().String()
}

// Pool is the database pool the app runs on.
func (a *App) Pool() *pgxpool.Pool { return a.infra.pool }

// JetStream is the app's JetStream context.
func (a *App) JetStream() jetstream.JetStream { return a.infra.js }

// Relay is the app's relay.
func (a *App) Relay() *relay.Relay { return a.relay }

// Lake is the app's lake (its queries).
func (a *App) Lake() *lake.Lake { return a.lake }

// Mover is the app's lake mover, nil with CAIRN_LAKE=off.
func (a *App) Mover() *lake.Mover { return a.mover }

// Subscriptions are the handlers the modules registered, as the consumer
// runtime runs them.
func (a *App) Subscriptions() []outbox.Subscription { return a.subs }

// Forgetter is the app's forgetter of people (outbox/privacy).
func (a *App) Forgetter() *privacy.Forgetter { return a.forgetter }

// Sagas is the registry of the sagas the modules registered.
func (a *App) Sagas() *saga.Registry { return a.sagas }

// RefusedError is a start-up that refused to run on this database as it
// is (saga instances this build does not handle): `cairn serve` exits 2.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return "start-up refused: " + e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ExitCode is the process's exit code for this error.
func (e *RefusedError) ExitCode() int { return 2 }

// Module returns the facade New built for the named module (its *Module),
// or nil if it is not in this app.
func (a *App) Module(name string) any { return a.built[name] }

// Metrics is the app's Prometheus registry and figures.
func (a *App) Metrics() *telemetry.Metrics { return a.metrics }

// Routes are the HTTP routes the app serves, as echo registered them.
func (a *App) Routes() []*echo.Route { return a.web.Routes() }

// natsHost is the NATS server outside subscribers connect to, for the
// AsyncAPI document: CAIRN_NATS_LISTEN when NATS is embedded, else the
// first host of CAIRN_NATS_URL (without credentials).
func natsHost(cfg config.Config) string {
	if cfg.EmbeddedNATS() {
		return cfg.NATSListen
	}
	first, _, _ := strings.Cut(cfg.NATSURL, ",")
	if u, err := url.Parse(first); err == nil && u.Host != "" {
		return u.Host
	}
	return "localhost:4222"
}
