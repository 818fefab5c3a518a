package relay

import (
	"context"
	"fmt"

	"github.com/cairn-dev/cairn/outbox/lease"
)

// Metrics is what the relay reports for the console and, later, /metrics.
type Metrics struct {
	State State
	// Lease is the relay's lease as this process sees it: holding (with the
	// token and how long the term holds without renewal) or standing by
	// behind the holder named.
	Lease            lease.Status
	Backlog          int64
	OldestAgeSeconds float64
	// Parked counts the events in outbox.parked: never publishable (see
	// leader.park); ParkedHere those this process parked.
	Parked        int64
	ParkedHere    uint64
	Published     uint64
	PublishErrors uint64
	// Idles counts the times this process's leader found the outbox empty
	// and went idle, waiting for a writer's NOTIFY.
	Idles     uint64
	LastError string
}

// Metrics returns the counters of this process's relay and the outbox
// backlog as the database sees it (the same from every replica).
func (r *Relay) Metrics(ctx context.Context) (Metrics, error) {
	m := Metrics{
		State:         r.state.Load().(State),
		Lease:         r.lease.Status(),
		Published:     r.published.Load(),
		PublishErrors: r.publishErrors.Load(),
		ParkedHere:    r.parked.Load(),
		Idles:         r.idles.Load(),
	}
	r.errMu.Lock()
	m.LastError = r.lastErr
	r.errMu.Unlock()
	if err := r.pool.QueryRow(ctx, backlogSQL).Scan(&m.Backlog, &m.OldestAgeSeconds, &m.Parked); err != nil {
		return m, fmt.Errorf("relay: backlog: %w", err)
	}
	return m, nil
}

// State returns the relay's current role.
func (r *Relay) State() State { return r.state.Load().(State) }

// Lease returns the relay's lease status.
func (r *Relay) Lease() lease.Status { return r.lease.Status() }
