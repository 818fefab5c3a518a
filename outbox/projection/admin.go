package projection

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/web"
)

type statusResponse struct {
	Projections []Status `json:"projections"`
}

// RegisterAdmin adds GET /projections to admin (/api/v1/admin, behind the
// admin token): every projection's live and building versions, their
// states, positions, lag and last verification.
func (r *Runtime) RegisterAdmin(admin *echo.Group, token string) {
	web.Handle(admin, http.MethodGet, "/projections", web.Op{
		Summary:     "Versioned projections: each one's live version, the versions being built, their state, position, lag and last verification",
		Description: "States: building (from the lake), catching_up (from the stream), verifying, live, failed (not switched; see last_verification and error), retired (kept for a rollback).",
		Response:    statusResponse{}, Admin: true,
	}, func(c echo.Context) error {
		st, err := r.Status(c.Request().Context())
		if err != nil {
			return err
		}
		if st == nil {
			st = []Status{}
		}
		return c.JSON(http.StatusOK, statusResponse{Projections: st})
	}, web.RequireAdmin(token))
}

// Rollback switches a projection's queries back to the version live before
// the current one, in one transaction: the current one is retired and
// marked rolled back, so no replica switches to it again by itself. Its
// replicas keep it fed, so rolling back once more switches forward again.
// It returns the versions switched from and to. Errors: an unknown
// projection, no previous version, or one whose tables are gone.
func Rollback(ctx context.Context, db *pgxpool.Pool, name string) (from, to int, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var live, prev *int
		err := tx.QueryRow(ctx, `SELECT live_version, previous_version FROM projection.projections WHERE name = $1 FOR UPDATE`, name).Scan(&live, &prev)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && live == nil {
			return fmt.Errorf("projection %s has no live version", name)
		}
		if err != nil {
			return err
		}
		if prev == nil {
			return fmt.Errorf("projection %s: no previous version is kept to roll back to (live: %d)", name, *live)
		}
		v, err := loadVersion(ctx, tx, name, *prev)
		if err != nil {
			return fmt.Errorf("projection %s: version %d: %w", name, *prev, err)
		}
		var whole bool
		if err := tx.QueryRow(ctx, `SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest($1::text[]) t`, v.Tables).Scan(&whole); err != nil {
			return err
		}
		if !whole || v.State == Failed {
			return fmt.Errorf("projection %s: version %d cannot answer queries (state %s, tables kept: %t)", name, *prev, v.State, whole)
		}
		if _, err := tx.Exec(ctx, `UPDATE projection.projections SET live_version = previous_version, previous_version = live_version,
			switched_at = clock_timestamp() WHERE name = $1`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE projection.versions SET state = 'retired', rolled_back = true, state_at = clock_timestamp()
			WHERE name = $1 AND version = $2`, name, *live); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE projection.versions SET state = 'live', rolled_back = false, state_at = clock_timestamp()
			WHERE name = $1 AND version = $2`, name, *prev); err != nil {
			return err
		}
		from, to = *live, *prev
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("projection rollback: %w", err)
	}
	return from, to, nil
}

// Rebuild drops a version that is not live (a failed one, say), tables and
// all, so that the replicas whose code declares it build it again from the
// lake. Errors: no such version, or it is the live one.
func Rebuild(ctx context.Context, db *pgxpool.Pool, name string, version int) error {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		ptr, err := loadPointer(ctx, tx, name)
		if err != nil {
			return err
		}
		if ptr.Live != nil && *ptr.Live == version {
			return fmt.Errorf("projection %s: version %d is live; roll back first", name, version)
		}
		v, err := loadVersion(ctx, tx, name, version)
		if err != nil {
			return fmt.Errorf("projection %s: version %d: %w", name, version, err)
		}
		for _, t := range v.Tables {
			if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier(splitName(t)).Sanitize()); err != nil {
				return err
			}
		}
		if ptr.Previous != nil && *ptr.Previous == version {
			if _, err := tx.Exec(ctx, `UPDATE projection.projections SET previous_version = NULL WHERE name = $1`, name); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM projection.versions WHERE name = $1 AND version = $2`, name, version)
		return err
	})
	if err != nil {
		return fmt.Errorf("projection rebuild: %w", err)
	}
	return nil
}
