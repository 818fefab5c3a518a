package ledger

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/modules"
)

// RebuildReport says what a rebuild found.
type RebuildReport struct {
	Accounts  int64 // accounts recomputed from the log
	Corrected int64 // whose projected balance or version differed and was fixed
}

// rebuildCommand is `cairn rebuild ledger`.
var rebuildCommand = modules.Command{
	Name:    "rebuild",
	Summary: "recompute the ledger's balances from its event log",
	Run: func(ctx context.Context, pool *pgxpool.Pool, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("rebuild ledger takes no arguments")
		}
		r, err := Rebuild(ctx, pool)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "ledger: %d accounts rebuilt from the log, %d corrected\n", r.Accounts, r.Corrected)
		return err
	},
}

// Rebuild recomputes every account's balance and version from the event
// log, summing the movements rather than trusting balance_after, and
// corrects the projection where it differs. Writers wait while it runs.
func Rebuild(ctx context.Context, pool *pgxpool.Pool) (RebuildReport, error) {
	var r RebuildReport
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE ledger.accounts IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
WITH derived AS (
    SELECT account_id,
           sum(CASE type WHEN 'deposited' THEN amount WHEN 'withdrawn' THEN -amount ELSE 0 END) AS balance,
           max(version) AS version
    FROM ledger.entries GROUP BY account_id
), fixed AS (
    UPDATE ledger.accounts a SET balance = d.balance, version = d.version
    FROM derived d
    WHERE a.id = d.account_id AND (a.balance, a.version) IS DISTINCT FROM (d.balance, d.version)
    RETURNING a.id
)
SELECT (SELECT count(*) FROM derived), (SELECT count(*) FROM fixed)`).Scan(&r.Accounts, &r.Corrected)
	})
	if err != nil {
		return r, fmt.Errorf("ledger: rebuild: %w", err)
	}
	return r, nil
}
