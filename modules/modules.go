// Package modules is what every business module is built from. A module is
// a folder modules/<name>/ that owns PostgreSQL schema <name>, subjects
// events.<name>.* and internal.<name>.*, and its migrations; other modules
// reach it only through its events or its exported facade
// (integration_test/architecture_test.go enforces this). README.md,
// "Adding a module", walks through one.
package modules

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// Deps is everything a module may use. There is no NATS here: modules
// publish with outbox.Append (or outbox.Queue) inside their own transactions
// and consume with outbox.Handle on Consumers. Every field but Pool may be
// left zero in a test: no routes, no log, handlers checked but not run.
type Deps struct {
	Pool      *pgxpool.Pool
	API       *echo.Group // /api/v1
	Pages     *echo.Group // the site's root, for pages a module serves (users: /activate)
	Log       *slog.Logger
	Config    config.Config
	Consumers *outbox.Subscriptions
	// Folds is where a module registers, with lake.Fold, how each aggregate
	// it owns is folded from its events: the lake's "state as of" reads it.
	Folds *lake.Folds
	// Sagas is where a module registers its sagas, one line each
	// (d.Sagas.Register(def)); nil in a test: definitions checked, not run.
	Sagas *saga.Registry
	// Projections is where a module registers its versioned read models
	// (projection.Spec); nil in a test: specs checked, not run.
	Projections *projection.Registry
	// Closing is closed when the app begins to shut down, before HTTP
	// stops: a long-lived response (Server-Sent Events) ends on it, so
	// shutdown does not wait for it. Nil in a test: never closed.
	Closing <-chan struct{}
}

// Logger returns the log of the named module: Log with a module attribute,
// or a log that discards everything when Log is nil.
func (d Deps) Logger(module string) *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log.With("module", module)
}

// Route calls register with the API group, unless there is none.
func (d Deps) Route(register func(api *echo.Group)) {
	if d.API != nil {
		register(d.API)
	}
}

// DBTX is what a module's store runs on: the pool, or inside a use case
// the pgx.Tx that use case owns (sqlc's shape).
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Definition is how the app knows a module before building it: its name,
// its migrations, its constructor and the commands it offers. Each module
// exports one, made with Define; app/modules.go lists them.
type Definition struct {
	// Name is the module's schema, its subject prefix and the suffix of its
	// migration version table.
	Name string
	// Migrations are the module's goose SQL files, 00001_<what>.sql and on,
	// versioned on their own in goose_db_version_<name>; nil for none.
	Migrations fs.FS
	// Commands are what the module offers on the command line.
	Commands []Command
	build    func(Deps) (any, error)
}

// Command is a command line action a module offers: `cairn <Name> <module>
// [args]`, run against the database without starting the server.
type Command struct {
	Name    string // a verb: rebuild
	Summary string // one line for cairn's usage
	Run     func(ctx context.Context, pool *pgxpool.Pool, args []string, stdout io.Writer) error
}

var moduleName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Define describes a module: files holds its SQL under migrations/
// (//go:embed migrations/*.sql; nil for a module without tables), build is
// its New. It panics on a name that cannot be a schema or files without a
// migrations/ folder: mistakes start-up must not survive.
func Define[M any](name string, files fs.FS, build func(Deps) (M, error), commands ...Command) Definition {
	if !moduleName.MatchString(name) {
		panic(fmt.Sprintf("modules: %q is not a module name (lower snake case)", name))
	}
	def := Definition{Name: name, Commands: commands, build: func(d Deps) (any, error) { return build(d) }}
	if files != nil {
		sub, err := fs.Sub(files, "migrations")
		if err == nil {
			_, err = fs.Stat(sub, ".")
		}
		if err != nil {
			panic(fmt.Sprintf("modules: %s: its files have no migrations/ folder: %v", name, err))
		}
		def.Migrations = sub
	}
	return def
}

// Build constructs the module: it registers its routes and handlers on d and
// returns its facade (the *Module of its package). Errors: the module's own.
func (def Definition) Build(d Deps) (any, error) {
	m, err := def.build(d)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", def.Name, err)
	}
	return m, nil
}
