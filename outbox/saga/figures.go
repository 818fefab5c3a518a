package saga

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Figures are what /metrics shows of the sagas: the open instances and
// how late the timers fire.
type Figures struct {
	// Open counts the running and stuck instances of every registered
	// type, a zero included for each type and status with none. Completed
	// and cancelled instances are not counted: they only grow, and
	// counting them would cost a scan of the whole table.
	Open []Open
	// OldestDueTimer is how long the oldest due timer has waited to fire,
	// 0 when none is due. The poller fires a due timer within about
	// 100 ms, so a figure that keeps growing means no replica fires them.
	OldestDueTimer time.Duration
}

// Open is the number of instances of one type in one open status.
type Open struct {
	Type   string
	Status Status
	Count  int64
}

// OpenStatuses are the statuses Figures counts, in order.
var OpenStatuses = []Status{Running, Stuck}

// Figures reads the figures on db: two index scans (instances_open,
// timers_due) of the rows that are open or due, never of the finished
// ones. Errors: the database's.
func (r *Registry) Figures(ctx context.Context, db *pgxpool.Pool) (Figures, error) {
	counts := map[[2]string]int64{}
	rows, err := db.Query(ctx, `SELECT saga_type, status, count(*) FROM saga.instances
		WHERE status IN ('running', 'stuck') GROUP BY 1, 2`)
	if err != nil {
		return Figures{}, fmt.Errorf("saga: count open instances: %w", err)
	}
	for rows.Next() {
		var typ, status string
		var n int64
		if err := rows.Scan(&typ, &status, &n); err != nil {
			rows.Close()
			return Figures{}, fmt.Errorf("saga: count open instances: %w", err)
		}
		counts[[2]string{typ, status}] = n
	}
	if err := rows.Err(); err != nil {
		return Figures{}, fmt.Errorf("saga: count open instances: %w", err)
	}
	var f Figures
	// Only the registered types: the label values stay the ones the code
	// fixes (start-up refuses open instances of any other, see Check).
	for _, typ := range r.Types() {
		for _, st := range OpenStatuses {
			f.Open = append(f.Open, Open{Type: typ, Status: st, Count: counts[[2]string{typ, string(st)}]})
		}
	}
	var secs float64
	if err := db.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(fire_at)), 0)::float8
		FROM saga.timers WHERE fire_at <= clock_timestamp()`).Scan(&secs); err != nil {
		return Figures{}, fmt.Errorf("saga: oldest due timer: %w", err)
	}
	f.OldestDueTimer = time.Duration(secs * float64(time.Second))
	return f, nil
}
