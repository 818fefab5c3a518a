package app

import (
	"database/sql"

	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/customers"
	"github.com/cairn-dev/cairn/modules/inventory"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/orders"
	"github.com/cairn-dev/cairn/modules/payments"
	"github.com/cairn-dev/cairn/modules/reporting"
	"github.com/cairn-dev/cairn/modules/users"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// Modules returns every business module Cairn ships, in start order.
// Adding a module is one line here (README.md, "Adding a module").
func Modules() []modules.Definition {
	return []modules.Definition{
		users.Definition,
		mail.Definition,
		ledger.Definition,
		customers.Definition,
		inventory.Definition,
		payments.Definition,
		orders.Definition,
		reporting.Definition,
	}
}

// Migrator returns the runner of the platform's migrations and those of
// defs, over db.
func Migrator(db *sql.DB, defs []modules.Definition) (*migrations.Runner, error) {
	// The saga runtime's and the projection runtime's tables are the
	// platform's, each in a set of its own.
	sources := []migrations.Source{{Name: saga.MigrationsName, FS: saga.Migrations()},
		{Name: projection.MigrationsName, FS: projection.Migrations()}}
	for _, d := range defs {
		sources = append(sources, migrations.Source{Name: d.Name, FS: d.Migrations})
	}
	return migrations.New(db, sources...)
}
