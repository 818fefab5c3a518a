package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5"
)

// The outcomes of a bulk action on one dead letter.
const (
	BulkDelivered = "delivered" // retried: the handler succeeded, the dead letter is gone
	BulkFailed    = "failed"    // retried: the handler failed again, the dead letter is kept
	BulkSkipped   = "skipped"   // not retried: an earlier event of its key failed again
	BulkDiscarded = "discarded"
	BulkGone      = "gone" // no longer a dead letter (retried or discarded meanwhile)
)

// BulkResult is what a bulk action did to one dead letter.
type BulkResult struct {
	ID       string `json:"id"`
	Consumer string `json:"consumer,omitempty"`
	Key      string `json:"key,omitempty"`
	EventID  string `json:"event_id,omitempty"`
	Outcome  string `json:"outcome"`
	Error    string `json:"error,omitempty"`
}

// bulkWorkers is how many keys a bulk retry works on at once.
const bulkWorkers = 4

// RetryMany retries exactly the dead letters ids names (those confirmed;
// any parked later are not touched), and returns one result per id, in
// the order given. Events of one consumer and key are retried one after
// another in the order they were appended (their UUIDv7 ids), and after
// one fails again the later ones of its key are skipped, so a retry never
// makes a key's events overtake each other. Keys run concurrently.
// Errors: only the database's when reading the dead letters.
func (r *Runtime) RetryMany(ctx context.Context, ids []string) ([]BulkResult, error) {
	found, err := r.bulkLoad(ctx, ids)
	if err != nil {
		return nil, err
	}
	groups := map[string][]*BulkResult{}
	var order []string
	seen := map[string]bool{}
	for _, id := range ids {
		res := found[id]
		if res == nil || res.Outcome == BulkGone || seen[id] {
			continue
		}
		seen[id] = true
		g := res.Consumer + "\x00" + res.Key
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], res)
	}
	work := make(chan []*BulkResult)
	var wg sync.WaitGroup
	for range bulkWorkers {
		wg.Go(func() {
			for g := range work {
				sort.Slice(g, func(i, j int) bool { return g[i].EventID < g[j].EventID })
				failed := false
				for _, res := range g {
					if failed {
						res.Outcome, res.Error = BulkSkipped, "an earlier event of its key failed again; retry that one first"
						continue
					}
					switch err := r.Retry(ctx, res.ID); {
					case err == nil:
						res.Outcome = BulkDelivered
					case errors.Is(err, ErrDeadLetterNotFound):
						res.Outcome = BulkGone
					default:
						res.Outcome, res.Error, failed = BulkFailed, err.Error(), true
					}
				}
			}
		})
	}
	for _, g := range order {
		work <- groups[g]
	}
	close(work)
	wg.Wait()
	return collect(ids, found), nil
}

// DiscardMany discards exactly the dead letters ids names, one result per
// id, in the order given. Errors: only the database's when reading them.
func (r *Runtime) DiscardMany(ctx context.Context, ids []string) ([]BulkResult, error) {
	found, err := r.bulkLoad(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		res := found[id]
		if res == nil || res.Outcome != "" {
			continue // gone, or done already (an id given twice)
		}
		switch err := r.Discard(ctx, id); {
		case err == nil:
			res.Outcome = BulkDiscarded
		case errors.Is(err, ErrDeadLetterNotFound):
			res.Outcome = BulkGone
		default:
			res.Outcome, res.Error = BulkFailed, err.Error()
		}
	}
	return collect(ids, found), nil
}

// bulkLoad reads what a bulk action needs of each dead letter; ids that
// are not (or no longer) dead letters are BulkGone.
func (r *Runtime) bulkLoad(ctx context.Context, ids []string) (map[string]*BulkResult, error) {
	valid := make([]string, 0, len(ids))
	out := map[string]*BulkResult{}
	for _, id := range ids {
		out[id] = &BulkResult{ID: id, Outcome: BulkGone}
		if validUUID(id) {
			valid = append(valid, id)
		}
	}
	rows, err := r.pool.Query(ctx, `SELECT id::text, consumer, event_key, event_id::text FROM inbox.dead_letters WHERE id = ANY($1::uuid[])`, valid)
	if err != nil {
		return nil, fmt.Errorf("consumer: read dead letters: %w", err)
	}
	var id, c, key, ev string
	if _, err := pgx.ForEachRow(rows, []any{&id, &c, &key, &ev}, func() error {
		out[id] = &BulkResult{ID: id, Consumer: c, Key: key, EventID: ev} // Outcome set by the action
		return nil
	}); err != nil {
		return nil, fmt.Errorf("consumer: read dead letters: %w", err)
	}
	return out, nil
}

func collect(ids []string, found map[string]*BulkResult) []BulkResult {
	out := make([]BulkResult, 0, len(ids))
	for _, id := range ids {
		out = append(out, *found[id])
	}
	return out
}
