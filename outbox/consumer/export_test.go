package consumer

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// Hooks for the tests in package consumer_test.

var ErrFenced = errFenced

// Record is the fenced inbox insert.
func Record(ctx context.Context, tx pgx.Tx, consumer, eventID string, t *lease.Term) error {
	return record(ctx, tx, consumer, eventID, t)
}

// Park writes a dead letter for m, fenced by t.
func (r *Runtime) Park(ctx context.Context, consumer string, m jetstream.Msg, ev outbox.CloudEvent, t *lease.Term) error {
	return r.park(ctx, consumer, m, ev, 1, context.Canceled, t)
}

// WithoutReset makes the runtime behave as with a NATS server older than
// 2.14, which cannot reset a consumer.
func WithoutReset(o Options) Options {
	o.noReset = true
	return o
}
