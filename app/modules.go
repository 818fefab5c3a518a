package app

import (
	"database/sql"

	"github.com/cairn-dev/cairn/migrations"
	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/modules/ledger"
	"github.com/cairn-dev/cairn/modules/mail"
	"github.com/cairn-dev/cairn/modules/users"
)

// Modules returns every business module Cairn ships, in start order.
// Adding a module is one line here (README.md, "Adding a module").
func Modules() []modules.Definition {
	return []modules.Definition{
		users.Definition,
		mail.Definition,
		ledger.Definition,
	}
}

// Migrator returns the runner of the platform's migrations and those of
// defs, over db.
func Migrator(db *sql.DB, defs []modules.Definition) (*migrations.Runner, error) {
	sources := make([]migrations.Source, 0, len(defs))
	for _, d := range defs {
		sources = append(sources, migrations.Source{Name: d.Name, FS: d.Migrations})
	}
	return migrations.New(db, sources...)
}
