// Package projection runs versioned read models ("projections") built from
// events alone: a module declares a projection (its tables, the events that
// feed it, the set-based SQL that applies a batch of them, and the checks
// that verify it) and registers it on modules.Deps.Projections; the package
// keeps it up to date and switches versions blue/green.
//
// A projection has a version the developer bumps when its logic or its
// tables change. Each version has tables of its own in the module's schema
// (<table>_v<version>). When a binary starts with a version that is not
// built yet, the holder of the version's lease (outbox/lease, one replica):
//
//  1. builds the new tables from the lake, by position, while the live
//     version keeps answering (building);
//  2. follows the stream from the first sequence the lake did not cover
//     (catching_up): every earlier event of the stream is in the lake at or
//     before the position the build stopped at, so nothing is skipped, and
//     what is applied twice changes nothing (projections are idempotent);
//  3. verifies it (verifying): stops applying, waits until the lake holds
//     every event applied, and compares each declared check (row counts,
//     sums, a checksum and every row) with an independent computation over
//     the lake's events at exactly that cut; a difference fails the version,
//     which is never switched, and the report names the rows;
//  4. catches up again and switches queries to it in one transaction (live);
//     the version live before is retired and kept, so `cairn projection
//     rollback <name>` can switch back.
//
// Apply statements must be order-tolerant and idempotent: the same set of
// events, delivered in any order and any number of times, must leave the
// same tables. That is what makes the hand-over from lake to stream, a
// takeover by another replica, and a redelivery harmless.
//
// This package does not import NATS: the stream is reached through Live,
// which outbox/projection/natslive implements.
package projection

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cairn-dev/cairn/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the package's goose SQL files (schema projection), a set
// of their own next to the platform's and the modules'.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// MigrationsName is the name of the package's migration set (its goose
// version table is goose_db_version_projection); no module may take it.
const MigrationsName = "projection"

// Spec declares one projection.
//
// SQL in Create, Apply and Checks names the version's tables by their
// logical names in braces, {order_lines}, and the staged batch as {batch}:
// a temporary table (position bigint, seq bigint, id uuid, type text,
// subject text, time timestamptz, data jsonb) holding the events to apply,
// possibly several times each and in any order.
type Spec struct {
	// Name is the projection's name, "<module>_<what>" in lower snake case:
	// its lease is projection:<name>:<version>.
	Name string
	// Version is bumped whenever Create, Apply or Checks change.
	Version int
	// Schema is the module's schema, where the version's tables are made.
	Schema string
	// Tables are the logical names of the version's tables; each is made
	// as <schema>.<name>_v<version>.
	Tables []string
	// Events are the event types that feed it, all on one stream (all
	// public or all internal); each must be declared in the catalog.
	Events []string
	// Create are the statements that make the version's tables and
	// indexes, run in one transaction.
	Create []string
	// Apply are the statements that apply the staged batch, run in order
	// in one transaction (sent in one round trip).
	Apply []string
	// Checks verify a built version before it goes live.
	Checks []Check
}

// Check is one verification: the rows of a table of the version, compared
// with the rows Expected computes from the lake's events at the same cut.
type Check struct {
	// Name names the check in the report.
	Name string
	// Table is the logical table checked.
	Table string
	// Key are the columns that identify a row (named in the report).
	Key []string
	// Columns are the other columns compared.
	Columns []string
	// Sums are numeric columns (of Columns) whose totals the report shows.
	Sums []string
	// Expected is a query over events (position, seq, id, type, subject,
	// time, data: every event of the projection's types the version
	// reflects, once each) returning Key and Columns by those names. It must
	// compute the rows independently of Apply: in one pass over the whole
	// set, not incrementally.
	Expected string
}

var (
	nameSyntax  = regexp.MustCompile(`^[a-z][a-z0-9]*_[a-z][a-z0-9_]*$`)
	identSyntax = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Validate reports what is wrong with a spec: names, version, tables, the
// event types (declared, on one stream) and the checks.
func (s Spec) Validate() error {
	switch {
	case !nameSyntax.MatchString(s.Name):
		return fmt.Errorf("projection: name %q is not <module>_<what> in lower snake case", s.Name)
	case s.Version < 1:
		return fmt.Errorf("projection %s: version %d: versions start at 1", s.Name, s.Version)
	case !identSyntax.MatchString(s.Schema):
		return fmt.Errorf("projection %s: schema %q is not a schema name", s.Name, s.Schema)
	case len(s.Tables) == 0:
		return fmt.Errorf("projection %s: no tables", s.Name)
	case len(s.Events) == 0:
		return fmt.Errorf("projection %s: no events feed it", s.Name)
	case len(s.Apply) == 0:
		return fmt.Errorf("projection %s: no apply statements", s.Name)
	}
	seen := map[string]bool{}
	for _, t := range s.Tables {
		if !identSyntax.MatchString(t) || t == "batch" || seen[t] {
			return fmt.Errorf("projection %s: table %q is not a table name, or is named twice", s.Name, t)
		}
		seen[t] = true
	}
	if _, err := s.stream(); err != nil {
		return err
	}
	for _, c := range s.Checks {
		if c.Name == "" || !seen[c.Table] || len(c.Key) == 0 || c.Expected == "" {
			return fmt.Errorf("projection %s: check %q needs a name, one of the tables, key columns and an expected query", s.Name, c.Name)
		}
		for _, col := range slices.Concat(c.Key, c.Columns) {
			if !identSyntax.MatchString(col) {
				return fmt.Errorf("projection %s: check %s: %q is not a column name", s.Name, c.Name, col)
			}
		}
		for _, col := range c.Sums {
			if !slices.Contains(c.Columns, col) {
				return fmt.Errorf("projection %s: check %s: sum %q is not one of its columns", s.Name, c.Name, col)
			}
		}
	}
	return nil
}

// stream returns the stream all of the spec's events are on.
func (s Spec) stream() (string, error) {
	stream := ""
	for _, typ := range s.Events {
		d, ok := outbox.Lookup(typ)
		if !ok {
			return "", fmt.Errorf("projection %s is fed %s, which no module declares", s.Name, typ)
		}
		st := outbox.PublicStream
		if d.Visibility == outbox.Internal {
			st = outbox.InternalStream
		}
		if stream != "" && st != stream {
			return "", fmt.Errorf("projection %s: its events are on two streams (%s and %s); feed it from one", s.Name, stream, st)
		}
		stream = st
	}
	return stream, nil
}

// subjects are the NATS subjects of the spec's events.
func (s Spec) subjects() []string {
	out := make([]string, 0, len(s.Events))
	for _, typ := range s.Events {
		d, _ := outbox.Lookup(typ)
		out = append(out, outbox.Subject(typ, d.Visibility))
	}
	return out
}

// leaseName is the lease of one version: one replica builds and feeds it.
func leaseName(name string, version int) string {
	return "projection:" + name + ":" + strconv.Itoa(version)
}

// Tables maps a version's logical table names to their physical ones.
type Tables struct {
	names map[string]string
	r     *strings.Replacer
}

// BatchTable is the temporary table a batch is staged in (per connection).
const BatchTable = "pg_temp.projection_batch"

// TablesOf returns the physical tables of version of spec.
func TablesOf(s Spec, version int) Tables {
	t := Tables{names: map[string]string{}}
	pairs := []string{"{batch}", BatchTable}
	for _, name := range s.Tables {
		phys := s.Schema + "." + name + "_v" + strconv.Itoa(version)
		t.names[name] = phys
		pairs = append(pairs, "{"+name+"}", phys)
	}
	t.r = strings.NewReplacer(pairs...)
	return t
}

// tablesFrom rebuilds Tables from the physical names a version row keeps.
func tablesFrom(physical []string) Tables {
	t := Tables{names: map[string]string{}}
	pairs := []string{"{batch}", BatchTable}
	for _, phys := range physical {
		_, table, _ := strings.Cut(phys, ".")
		logical := table[:strings.LastIndex(table, "_v")]
		t.names[logical] = phys
		pairs = append(pairs, "{"+logical+"}", phys)
	}
	t.r = strings.NewReplacer(pairs...)
	return t
}

// Name returns the physical name of a logical table ("" if unknown).
func (t Tables) Name(logical string) string { return t.names[logical] }

// SQL replaces every {table} (and {batch}) in q with its physical name.
func (t Tables) SQL(q string) string { return t.r.Replace(q) }

// physical lists the physical names, sorted.
func (t Tables) physical() []string {
	out := make([]string, 0, len(t.names))
	for _, p := range t.names {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Registry holds the projections the modules registered. Safe for
// concurrent use; a nil registry checks specs and keeps nothing.
type Registry struct {
	mu    sync.Mutex
	specs map[string]*Projection
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]*Projection{}} }

// Register adds a projection and returns its handle, through which the
// module's queries read the live version. Errors: an invalid spec, a name
// registered twice, or a table another projection of the schema has.
func (r *Registry) Register(s Spec) (*Projection, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	stream, _ := s.stream()
	p := &Projection{spec: s, stream: stream}
	if r == nil {
		return p, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Name]; dup {
		return nil, fmt.Errorf("projection %s registered twice", s.Name)
	}
	for _, o := range r.specs {
		if o.spec.Schema != s.Schema {
			continue
		}
		for _, t := range s.Tables {
			if slices.Contains(o.spec.Tables, t) {
				return nil, fmt.Errorf("projection %s: table %s.%s belongs to projection %s", s.Name, s.Schema, t, o.spec.Name)
			}
		}
	}
	r.specs[s.Name] = p
	return p, nil
}

// All returns the registered projections, by name.
func (r *Registry) All() []*Projection {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Projection, 0, len(r.specs))
	for _, p := range r.specs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

// Projection is a registered projection: the module reads its live version
// through it (Read).
type Projection struct {
	spec   Spec
	stream string
}

// Spec returns the projection's declaration.
func (p *Projection) Spec() Spec { return p.spec }
