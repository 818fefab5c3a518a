package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Metrics is what the relay reports for the console and, later, /metrics.
type Metrics struct {
	State            State
	Backlog          int64
	OldestAgeSeconds float64
	Published        uint64
	PublishErrors    uint64
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
		Published:     r.published.Load(),
		PublishErrors: r.publishErrors.Load(),
		Idles:         r.idles.Load(),
	}
	r.errMu.Lock()
	m.LastError = r.lastErr
	r.errMu.Unlock()
	if err := r.pool.QueryRow(ctx, backlogSQL).Scan(&m.Backlog, &m.OldestAgeSeconds); err != nil {
		return m, fmt.Errorf("relay: backlog: %w", err)
	}
	return m, nil
}

// State returns the relay's current role.
func (r *Relay) State() State { return r.state.Load().(State) }

func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound)
}
