package lake

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// EnsurePartitions makes the partitions of this month and the next one, by
// the database's clock (recorded_at is the database's time). Making one
// takes a short exclusive lock on lake.events, so it is done a month ahead,
// not when the first row of the month arrives.
func EnsurePartitions(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `SELECT lake.create_partition(now()), lake.create_partition(now() + interval '1 month')`); err != nil {
		return fmt.Errorf("lake: make partitions: %w", err)
	}
	return nil
}
