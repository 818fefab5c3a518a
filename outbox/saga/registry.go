package saga

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the runtime's goose SQL files (schema saga), a set of
// their own next to the platform's and the modules'.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// MigrationsName is the name of the runtime's migration set (its goose
// version table is goose_db_version_saga); no module may take it.
const MigrationsName = "saga"

// Registry holds the sagas the modules registered, and runs what is theirs
// besides their consumers: the timer poller, the HTTP endpoints, the
// start-up check. Safe for concurrent use.
type Registry struct {
	subs  *outbox.Subscriptions
	mu    sync.Mutex
	sagas map[string]Saga
}

// NewRegistry returns a registry that adds the sagas' consumers to subs.
func NewRegistry(subs *outbox.Subscriptions) *Registry {
	return &Registry{subs: subs, sagas: map[string]Saga{}}
}

// Register adds a saga: its consumers join the registry's subscriptions.
// A nil registry checks the definition and keeps nothing, so a module
// builds on bare Deps. Errors: a malformed definition, a handler the event
// catalog refuses, a type registered twice.
func (r *Registry) Register(s Saga) error {
	var subs *outbox.Subscriptions
	if r != nil {
		subs = r.subs
	}
	typ := s.describe().Type
	if r != nil {
		r.mu.Lock()
		_, dup := r.sagas[typ]
		r.mu.Unlock()
		if dup {
			return fmt.Errorf("saga %s registered twice", typ)
		}
	}
	if err := s.register(subs); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sagas[typ] = s
	return nil
}

// Types lists the registered saga types, sorted.
func (r *Registry) Types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.sagas))
	for t := range r.sagas {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (r *Registry) saga(typ string) (Saga, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sagas[typ]
	return s, ok
}

// Check returns an error naming every running or stuck instance's saga
// type and state that this build does not handle: a saga no module
// registers, or a state its definition no longer lists. Start-up must
// refuse to run then, rather than leave those instances wedged.
func (r *Registry) Check(ctx context.Context, db *pgxpool.Pool) error {
	rows, err := db.Query(ctx, `SELECT saga_type, state, status, count(*) FROM saga.instances
		WHERE status IN ('running', 'stuck') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		return fmt.Errorf("saga: check instances: %w", err)
	}
	type group struct {
		typ, state string
		status     Status
		n          int64
	}
	groups, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (group, error) {
		var g group
		return g, row.Scan(&g.typ, &g.state, &g.status, &g.n)
	})
	if err != nil {
		return fmt.Errorf("saga: check instances: %w", err)
	}
	var bad []string
	for _, g := range groups {
		s, ok := r.saga(g.typ)
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s/%s: %d %s (no module registers saga %s)", g.typ, g.state, g.n, g.status, g.typ))
		case !s.knows(g.state):
			bad = append(bad, fmt.Sprintf("%s/%s: %d %s (saga %s has no state %s)", g.typ, g.state, g.n, g.status, g.typ, g.state))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("saga instances are in states this build does not handle: %s; deploy a build that handles them, or cancel them (POST /api/v1/admin/sagas/:type/:id/cancel on the old build)",
			strings.Join(bad, "; "))
	}
	return nil
}

// Retry runs the definition's retry on a stuck instance, in one
// transaction. Errors: ErrNotFound, ErrNotStuck, ErrNoRetry, the retry's.
func (r *Registry) Retry(ctx context.Context, db *pgxpool.Pool, typ, id string) error {
	s, ok := r.saga(typ)
	if !ok {
		return ErrNotFound
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		inst, err := lockInstance(ctx, tx, typ, id)
		if err != nil {
			return err
		}
		if inst.status != Stuck {
			return ErrNotStuck.WithMessage(fmt.Sprintf("the saga instance is %s, not stuck", inst.status))
		}
		return s.retryStuck(ctx, tx, inst)
	})
}

// Cancel stops an instance for good: its timers are removed, and later
// events and timers are recorded as stale. What it had done stays done:
// the operator takes over. Errors: ErrNotFound, ErrFinal.
func (r *Registry) Cancel(ctx context.Context, db *pgxpool.Pool, typ, id string) error {
	if _, ok := r.saga(typ); !ok {
		return ErrNotFound
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		inst, err := lockInstance(ctx, tx, typ, id)
		if err != nil {
			return err
		}
		if inst.status == Completed || inst.status == Cancelled {
			return ErrFinal.WithMessage(fmt.Sprintf("the saga instance is %s already", inst.status))
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM saga.timers WHERE saga_type = $1 AND id = $2`, typ, id)
		b.Queue(`UPDATE saga.instances SET status = 'cancelled', updated_at = clock_timestamp() WHERE saga_type = $1 AND id = $2`, typ, id)
		queueHistory(b, typ, id, kindCancel, inst.state, inst.state, inst.version, cause{Type: causeCancel}, []byte("[]"), "was "+string(inst.status))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("saga %s %s: cancel: %w", typ, id, err)
		}
		return nil
	})
}
