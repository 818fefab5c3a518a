// Package modules is what every business module is built from. A module is
// a folder modules/<name>/ that owns PostgreSQL schema <name> and subjects
// events.<name>.* and internal.<name>.*; other modules reach it only through
// its events or its exported facade (integration_test/architecture_test.go
// enforces this).
package modules

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
)

// Deps is everything a module may use. There is no NATS here: modules
// publish with outbox.Append (or outbox.Queue) inside their own transactions and consume by
// adding handlers to Consumers.
type Deps struct {
	Pool      *pgxpool.Pool
	API       *echo.Group // /api/v1
	Log       *slog.Logger
	Config    config.Config
	Consumers *outbox.Subscriptions
}

// DBTX is what a module's store runs on: the pool, or inside a use case
// the pgx.Tx that use case owns (sqlc's shape).
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Module is a running module.
type Module interface {
	Name() string
}

// Constructor builds a module and registers its routes; main.go holds the
// list, so adding a module is one line there.
type Constructor func(Deps) (Module, error)
