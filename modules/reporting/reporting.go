// Package reporting is the reports a business reads across modules (order
// lines, daily sales, stock, accounts), built from public events alone,
// exactly as an outside system would build them: it imports no module and
// reads no other module's tables. Its read models are versioned
// projections (outbox/projection), rebuilt from the lake blue/green when
// their code changes and verified against the lake before they go live;
// its endpoints only read (CQRS), and every answer says which events it
// reflects.
package reporting

import (
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
	"github.com/cairn-dev/cairn/outbox/projection"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition is what app/modules.go lists to ship the module.
var Definition = Define(Options{})

// Options change what the module declares, for tests and benchmarks: the
// shipped module takes none. A real version bump is a change of the
// version constant next to the SQL it versions.
type Options struct {
	// Versions overrides the version of the named projections
	// (reporting_order_lines, reporting_daily_sales, reporting_stock,
	// reporting_accounts): a version bump without a code change.
	Versions map[string]int
	// Mutate, if set, may change each spec before it is registered (a
	// deliberately wrong version, to see verification refuse it).
	Mutate func(*projection.Spec)
}

// Define returns the module's definition with o.
func Define(o Options) modules.Definition {
	return modules.Define("reporting", migrations, func(d modules.Deps) (*Module, error) { return New(d, o) })
}

// Specs returns the module's projections as o declares them.
func Specs(o Options) []projection.Spec {
	specs := []projection.Spec{orderLinesSpec(), salesSpec(), stockSpec(), accountsSpec()}
	for i := range specs {
		if v, ok := o.Versions[specs[i].Name]; ok {
			specs[i].Version = v
		}
		if o.Mutate != nil {
			o.Mutate(&specs[i])
		}
	}
	return specs
}

// Module is the reporting facade: its queries.
type Module struct {
	pool                           *pgxpool.Pool
	orderLines, sales, stock, accs *projection.Projection
}

// New registers the module's projections and its routes.
func New(d modules.Deps, o Options) (*Module, error) {
	m := &Module{pool: d.Pool}
	dst := map[string]**projection.Projection{orderLinesName: &m.orderLines, salesName: &m.sales, stockName: &m.stock, accountsName: &m.accs}
	for _, s := range Specs(o) {
		p, err := d.Projections.Register(s)
		if err != nil {
			return nil, fmt.Errorf("reporting: %w", err)
		}
		*dst[s.Name] = p
	}
	d.Route(m.routes)
	return m, nil
}
