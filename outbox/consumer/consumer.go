// Package consumer runs the handlers modules declare (outbox.Subscription):
// each on a JetStream durable consumer named for it, shared by all replicas,
// with one replica at a time consuming it (an advisory lock per consumer),
// so events of one key are handled in stream order.
//
// A handler runs inside one PostgreSQL transaction that also records
// (consumer, event id) in inbox.processed, and the message is acked only
// after commit: a redelivered event has no second effect. A failing event
// is retried with capped exponential backoff while holding back only its
// own key; after MaxAttempts it is parked in inbox.dead_letters and the
// consumer goes on; an event that can never succeed (outbox.Permanent, or
// data that does not decode into the handler's type) is parked at once. An
// event whose handler says an outside system is down (outbox.Unavailable)
// pauses the whole consumer, which retries it slowly and resumes when it
// succeeds.
package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// Options tune the runtime; zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	// InboxRetention is how long handled event ids are remembered; longer
	// than any redelivery horizon (a message unacked for AckWait is
	// redelivered within seconds). Default 7 days.
	InboxRetention time.Duration
	// InboxCleanupEvery is how often the consumer's holder forgets ids
	// older than InboxRetention (default 1h).
	InboxCleanupEvery time.Duration
	// AckWait is how long JetStream waits for an ack before redelivering;
	// the runtime extends it for events it is still working on.
	AckWait time.Duration
	// PausedRetry is the wait between attempts while an outside system is
	// down (default 2s).
	PausedRetry time.Duration
	// StandbyInterval is how often a standby replica tries to take over a
	// consumer (default 1s).
	StandbyInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InboxRetention <= 0 {
		o.InboxRetention = 7 * 24 * time.Hour
	}
	if o.InboxCleanupEvery <= 0 {
		o.InboxCleanupEvery = time.Hour
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PausedRetry <= 0 {
		o.PausedRetry = 2 * time.Second
	}
	if o.StandbyInterval <= 0 {
		o.StandbyInterval = time.Second
	}
}

// Runtime runs a set of subscriptions.
type Runtime struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	subs map[string]outbox.Subscription
	opt  Options
	log  *slog.Logger

	mu     sync.Mutex
	active map[string]bool // consumers this replica is running
}

// New returns a runtime for subs (already validated by
// outbox.Subscriptions.Add).
func New(pool *pgxpool.Pool, js jetstream.JetStream, subs []outbox.Subscription, opt Options) *Runtime {
	opt.setDefaults()
	r := &Runtime{pool: pool, js: js, subs: map[string]outbox.Subscription{}, opt: opt,
		log: opt.Logger.With("component", "consumer"), active: map[string]bool{}}
	for _, s := range subs {
		if s.MaxAttempts <= 0 {
			s.MaxAttempts = 5
		}
		if s.MaxBackoff <= 0 {
			s.MaxBackoff = 30 * time.Second
		}
		r.subs[s.Consumer] = s
	}
	return r
}

// Run consumes every subscription until ctx ends.
func (r *Runtime) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range r.subs {
		wg.Add(1)
		go func(s outbox.Subscription) {
			defer wg.Done()
			r.runSubscription(ctx, s)
		}(s)
	}
	wg.Wait()
	return ctx.Err()
}

// Active returns the consumers this replica is running right now.
func (r *Runtime) Active() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for c, on := range r.active {
		if on {
			out = append(out, c)
		}
	}
	return out
}

func (r *Runtime) setActive(consumer string, on bool) {
	r.mu.Lock()
	r.active[consumer] = on
	r.mu.Unlock()
}

func streamOf(s outbox.Subscription) string {
	if s.Visibility == outbox.Internal {
		return outbox.InternalStream
	}
	return outbox.PublicStream
}

func (r *Runtime) subscription(consumer string) (outbox.Subscription, error) {
	s, ok := r.subs[consumer]
	if !ok {
		return s, fmt.Errorf("consumer: no subscription %q in this build", consumer)
	}
	return s, nil
}
