// Package migrations applies Cairn's schema migrations with goose: the
// platform's own (the outbox and the inbox), embedded from this folder, and
// each module's, which live in modules/<name>/migrations. Every set is
// versioned on its own, in its own goose version table, so two modules added
// on two branches never collide. One PostgreSQL advisory lock is held around
// a whole run, so replicas that start together never race.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// PlatformName is the name the platform's migrations go by in Status and
// Down; no module may take it.
const PlatformName = "platform"

// Source is one set of migrations: the platform's or a module's.
type Source struct {
	Name string // PlatformName or the module's name
	FS   fs.FS  // goose SQL files at its root
}

// Platform returns the platform's migrations.
func Platform() Source { return Source{Name: PlatformName, FS: files} }

// Table is the version table of a set: the platform keeps goose's default
// (as every database migrated before modules had their own), a module
// goose_db_version_<name>.
func Table(source string) string {
	if source == PlatformName {
		return goose.DefaultTablename
	}
	return goose.DefaultTablename + "_" + source
}

// Runner applies the platform's migrations, then each module's.
type Runner struct {
	db   *sql.DB
	sets []set
}

type set struct {
	name string
	p    *goose.Provider
}

// New returns a runner for the platform and the given modules, in that
// order. Errors: a source named twice or PlatformName, or files goose
// refuses (a malformed name, two files of one version).
func New(db *sql.DB, modules ...Source) (*Runner, error) {
	r := &Runner{db: db}
	seen := map[string]bool{}
	for _, s := range append([]Source{Platform()}, modules...) {
		if seen[s.Name] {
			return nil, fmt.Errorf("migrations: %q named twice", s.Name)
		}
		seen[s.Name] = true
		if s.FS == nil {
			continue // a module without tables
		}
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("migrations: session locker: %w", err)
		}
		p, err := goose.NewProvider(goose.DialectPostgres, db, s.FS,
			goose.WithTableName(Table(s.Name)), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", s.Name, err)
		}
		r.sets = append(r.sets, set{s.Name, p})
	}
	return r, nil
}

// Applied is one migration run by Up or Down.
type Applied struct {
	Source   string
	Path     string
	Duration time.Duration
}

// Up applies every pending migration, the platform's first. A database
// migrated before modules had their own migrations is first adopted (see
// adoptLegacy). It returns what it applied, also when it fails part way.
func (r *Runner) Up(ctx context.Context) ([]Applied, error) {
	var out []Applied
	err := r.locked(ctx, func(conn *sql.Conn) error {
		if err := adoptLegacy(ctx, conn, r.names()); err != nil {
			return err
		}
		for _, s := range r.sets {
			res, err := s.p.Up(ctx)
			for _, m := range res {
				out = append(out, Applied{s.name, m.Source.Path, m.Duration})
			}
			if err != nil {
				return fmt.Errorf("migrations: %s: %w", s.name, err)
			}
		}
		return nil
	})
	return out, err
}

// Down rolls back the latest migration of one set. Errors: an unknown set,
// nothing to roll back, or the database's.
func (r *Runner) Down(ctx context.Context, source string) (Applied, error) {
	for _, s := range r.sets {
		if s.name != source {
			continue
		}
		var out Applied
		err := r.locked(ctx, func(*sql.Conn) error {
			res, err := s.p.Down(ctx)
			if err != nil {
				return fmt.Errorf("migrations: %s: %w", s.name, err)
			}
			out = Applied{s.name, res.Source.Path, res.Duration}
			return nil
		})
		return out, err
	}
	return Applied{}, fmt.Errorf("migrations: no migrations named %q (%v)", source, r.names())
}

// HasPending reports whether any set has a migration to apply.
func (r *Runner) HasPending(ctx context.Context) (bool, error) {
	for _, s := range r.sets {
		pending, err := s.p.HasPending(ctx)
		if err != nil || pending {
			return pending, err
		}
	}
	return false, nil
}

// Status is one migration and whether it is applied.
type Status struct {
	Source    string
	Path      string
	Applied   bool
	AppliedAt time.Time
}

// Status lists every migration of every set, in order.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	for _, s := range r.sets {
		st, err := s.p.Status(ctx)
		if err != nil {
			return out, fmt.Errorf("migrations: %s: %w", s.name, err)
		}
		for _, m := range st {
			out = append(out, Status{s.name, m.Source.Path, m.State == goose.StateApplied, m.AppliedAt})
		}
	}
	return out, nil
}

func (r *Runner) names() []string {
	out := make([]string, len(r.sets))
	for i, s := range r.sets {
		out[i] = s.name
	}
	return out
}

// runLock serialises whole runs across replicas: goose's own lock is taken
// and released per set, and adoption must not race a replica's first run.
const runLock = `SELECT pg_advisory_lock(hashtextextended('cairn.migrations', 0))`

func (r *Runner) locked(ctx context.Context, fn func(*sql.Conn) error) (err error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrations: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, runLock); err != nil {
		return fmt.Errorf("migrations: lock: %w", err)
	}
	defer func() {
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended('cairn.migrations', 0))`)
		err = errors.Join(err, uerr)
	}()
	return fn(conn)
}
