// Package consumer runs the handlers modules declare (outbox.Subscription):
// each on a JetStream durable consumer named for it, shared by all replicas,
// with one replica at a time consuming it (a lease per consumer, see
// outbox/lease), so events of one key are handled in stream order.
//
// Leadership. A replica handles a consumer's events only while its term of
// the consumer's lease is valid by its own clock: the check comes right
// before each handler call, handlers get the term's context (cancelled when
// it ends) and Delivery.CheckTerm for outside calls, and a term ends only
// after every lane has stopped. The inbox record is fenced by the lease's
// token, so a replica that wakes up after a takeover commits nothing.
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
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// Options tune the runtime; zero values mean the defaults.
type Options struct {
	Logger *slog.Logger
	// HandlerPool is what handlers, the inbox and dead letters run on
	// (default: the pool given to New). Give it a pool of its own so that
	// handlers can never take the connections the HTTP API needs, with
	// idle_in_transaction_session_timeout set: a holder frozen in the
	// middle of a transaction then lets go of its row locks (an inbox row
	// the next holder needs) without waiting for TCP to notice.
	HandlerPool *pgxpool.Pool
	// LeasePool is what the consumers' leases run on (default: the pool
	// given to New). A renewal that waits behind busy handlers for a
	// connection can lose the lease: give it a small pool of its own.
	LeasePool *pgxpool.Pool
	// Holder names this replica in outbox.leases (default host/pid).
	Holder string
	// LeaseTTL is how long a consumer's lease lasts without renewal
	// (default 5s): a frozen or cut-off replica stops handling when its
	// term runs out by its own clock, and another takes over after it.
	LeaseTTL time.Duration
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
	// FailingAfter is how long nobody may be consuming a consumer before
	// Ready reports it (default 1 min).
	FailingAfter time.Duration
	// Sealer seals the secret fields of events parked as dead letters and
	// opens them when one is retried (default: a random key of this
	// process's own, so what it parks no other process can open).
	Sealer *outbox.Sealer

	noReset bool // tests: behave as with a NATS server that cannot reset a consumer
}

func (o *Options) setDefaults(pool *pgxpool.Pool) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HandlerPool == nil {
		o.HandlerPool = pool
	}
	if o.LeasePool == nil {
		o.LeasePool = pool
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
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
	if o.FailingAfter <= 0 {
		o.FailingAfter = time.Minute
	}
	if o.Sealer == nil {
		o.Sealer = outbox.RandomSealer()
	}
}

// Runtime runs a set of subscriptions.
type Runtime struct {
	pool *pgxpool.Pool // the API's: admin reads
	db   *pgxpool.Pool // handlers, inbox, dead letters
	js   jetstream.JetStream
	subs map[string]outbox.Subscription
	opt  Options
	log  *slog.Logger

	states  map[string]*state // per consumer, fixed after New
	running atomic.Bool
}

// New returns a runtime for subs (already validated by
// outbox.Subscriptions.Add).
func New(pool *pgxpool.Pool, js jetstream.JetStream, subs []outbox.Subscription, opt Options) *Runtime {
	opt.setDefaults(pool)
	r := &Runtime{pool: pool, db: opt.HandlerPool, js: js, subs: map[string]outbox.Subscription{}, opt: opt,
		log: opt.Logger.With("component", "consumer"), states: map[string]*state{}}
	for _, s := range subs {
		if s.MaxAttempts <= 0 {
			s.MaxAttempts = 5
		}
		if s.MaxBackoff <= 0 {
			s.MaxBackoff = 30 * time.Second
		}
		r.subs[s.Consumer] = s
		st := &state{}
		st.lease = lease.New(opt.LeasePool, leaseName(s.Consumer), lease.Options{
			TTL: opt.LeaseTTL, StandbyEvery: opt.StandbyInterval, Holder: opt.Holder,
			Logger: r.log.With("consumer", s.Consumer), OnError: st.failed,
		})
		r.states[s.Consumer] = st
	}
	return r
}

// leaseName is the consumer's lease in outbox.leases.
func leaseName(consumer string) string { return "consumer:" + consumer }

// Run consumes every subscription until ctx ends: for each, it campaigns
// for the consumer's lease and consumes while it holds it.
func (r *Runtime) Run(ctx context.Context) error {
	r.running.Store(true)
	defer r.running.Store(false)
	// Before any consumer starts: one paused by an operator stays paused
	// across restarts.
	if err := r.readPauses(ctx); err != nil {
		r.log.Warn("cannot read the consumers' pauses", "err", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.observe(ctx) }()
	wg.Go(func() { r.sealStoredDeadLetters(ctx) })
	for _, s := range r.subs {
		wg.Add(1)
		go func(s outbox.Subscription) {
			defer wg.Done()
			st := r.states[s.Consumer]
			_ = st.lease.Run(ctx, func(tctx context.Context, t *lease.Term) error {
				return r.consume(tctx, t, s, st)
			})
		}(s)
	}
	wg.Wait()
	return ctx.Err()
}

// Active returns the consumers this replica is running right now.
func (r *Runtime) Active() []string {
	var out []string
	for c, st := range r.states {
		if st.holding() {
			out = append(out, c)
		}
	}
	return out
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
