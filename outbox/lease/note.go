package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// A holder's note says what it is doing with its lease ("consuming",
// "paused", …), so that other replicas can tell a lease whose holder works
// from one whose holder is stuck starting up. The consumer runtime's
// readiness is built on it: it alone cannot tell a failing holder from a
// working one, since both renew.

// ErrNotHolder is returned by SetNote when the term is no longer the
// lease's current one.
var ErrNotHolder = errors.New("lease: not the current holder")

// SetNote records note for term t, fenced by its token: a term that has
// ended writes nothing and gets ErrNotHolder. The call is bounded like a
// renewal.
func SetNote(ctx context.Context, db *pgxpool.Pool, t *Term, note string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tag, err := db.Exec(cctx, `UPDATE outbox.leases SET note = $3, note_token = token WHERE name = $1 AND token = $2`,
		t.Name, t.Token, note)
	if err != nil {
		return fmt.Errorf("lease %s: set note: %w", t.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHolder
	}
	return nil
}

// Row is a lease as the database has it now.
type Row struct {
	Name   string `json:"name"`
	Holder string `json:"holder"`
	Token  int64  `json:"token"`
	// Live is whether the term has not expired by the database's clock.
	Live bool `json:"live"`
	// Note is the current term's note, "" if it wrote none yet.
	Note string `json:"note,omitempty"`
	// HeldFor is how long the current holder has held it.
	HeldFor time.Duration `json:"held_for"`
}

// Read returns the rows of the named leases that exist, by name.
func Read(ctx context.Context, db *pgxpool.Pool, names []string) (map[string]Row, error) {
	rows, err := db.Query(ctx, `SELECT name, holder, token, expires_at > clock_timestamp(),
			CASE WHEN note_token = token THEN note ELSE '' END,
			extract(epoch FROM clock_timestamp() - acquired_at)::float8
		FROM outbox.leases WHERE name = ANY($1)`, names)
	if err != nil {
		return nil, fmt.Errorf("lease: read: %w", err)
	}
	out := map[string]Row{}
	for rows.Next() {
		var r Row
		var held float64
		if err := rows.Scan(&r.Name, &r.Holder, &r.Token, &r.Live, &r.Note, &held); err != nil {
			rows.Close()
			return nil, fmt.Errorf("lease: read: %w", err)
		}
		r.HeldFor = time.Duration(held * float64(time.Second))
		out[r.Name] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lease: read: %w", err)
	}
	return out, nil
}
