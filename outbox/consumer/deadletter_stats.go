package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetterStat is how many dead letters one consumer has, and when the
// oldest of them last failed.
type DeadLetterStat struct {
	Consumer string    `json:"consumer"`
	Count    int64     `json:"count"`
	Oldest   time.Time `json:"oldest,omitzero"`
}

// DeadLetterStats counts the dead letters of every consumer of this runtime
// (one aggregate over inbox.dead_letters, by its (consumer, failed_at)
// index), sorted by name; a consumer with none has Count 0. Errors: the
// database's.
func (r *Runtime) DeadLetterStats(ctx context.Context) ([]DeadLetterStat, error) {
	rows, err := r.pool.Query(ctx, `SELECT consumer, count(*), min(failed_at) FROM inbox.dead_letters GROUP BY consumer`)
	if err != nil {
		return nil, fmt.Errorf("consumer: count dead letters: %w", err)
	}
	got := map[string]DeadLetterStat{}
	var d DeadLetterStat
	if _, err := pgx.ForEachRow(rows, []any{&d.Consumer, &d.Count, &d.Oldest}, func() error { got[d.Consumer] = d; return nil }); err != nil {
		return nil, fmt.Errorf("consumer: count dead letters: %w", err)
	}
	out := make([]DeadLetterStat, 0, len(r.subs))
	for _, name := range r.names() {
		s := got[name]
		s.Consumer = name
		out = append(out, s)
	}
	return out, nil
}
