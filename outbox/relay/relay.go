// Package relay publishes the outbox to JetStream. One relay leads at a time
// across all replicas (a PostgreSQL advisory lock held by its connection);
// the others stand by and take over within about a second of the leader's
// connection dying.
//
// Guarantees, each tested against real PostgreSQL and NATS in this package
// and in integration_test/:
//   - every committed event is published, none of a rolled-back transaction;
//     late-committing transactions are never skipped, because rows are read
//     only below pg_snapshot_xmin, where no transaction is still running;
//   - events of one key go out in commit order (see outbox.Append);
//   - republishing after a crash is absorbed by Nats-Msg-Id deduplication,
//     and a new leader first skips what it finds already in the streams;
//   - a row is deleted only after JetStream has had time to fsync it.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox/lake"
)

// lockKey is the advisory lock that elects the leader ("cairn" + "relay").
const lockKey int64 = 0x636169726e72656c

// Options tune the relay. The zero value of each field means its default.
type Options struct {
	// BatchSize is how many rows are read and published per round.
	BatchSize int
	// PollInterval is the fallback wake-up in case a notification is lost.
	PollInterval time.Duration
	// DeleteDelay is how long after its publish is acked a row is kept:
	// longer than JetStream's sync interval, so the event is on disk before
	// its row goes.
	DeleteDelay time.Duration
	// IdleAfter is how long the leader keeps polling an empty outbox
	// (every millisecond) before it goes idle and waits for a writer's
	// NOTIFY: under steady load it then never goes idle. Default 5 ms;
	// as with every field, 0 means the default (1ns all but turns it off).
	IdleAfter time.Duration
	// StandbyInterval is how often a standby tries to become leader.
	StandbyInterval time.Duration
	// AckTimeout bounds the wait for a batch's publish acks.
	AckTimeout time.Duration
	// MaxBackoff caps the wait between attempts after an error.
	MaxBackoff time.Duration
	// Lake, if set, takes each range of published rows the relay would
	// delete and moves it into the lake instead (lake.Mover), with the
	// rows' publish acks; it must not block.
	Lake interface{ Move(lake.Range) }
	// Name identifies this process in logs and in outbox.relay.leader.
	Name   string
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.DeleteDelay <= 0 {
		o.DeleteDelay = 3 * time.Second
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = 5 * time.Millisecond
	}
	if o.StandbyInterval <= 0 {
		o.StandbyInterval = time.Second
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Relay tails the outbox and publishes it. Create it with New and call Run.
type Relay struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	opt  Options
	log  *slog.Logger

	state         atomic.Value // State
	published     atomic.Uint64
	publishErrors atomic.Uint64
	idles         atomic.Uint64
	errMu         sync.Mutex
	lastErr       string
	drained       chan struct{} // closed and replaced whenever the leader finds the outbox empty
	drainedMu     sync.Mutex
	asleep        bool // the leader is asleep with nothing left to publish
}

// State is the relay's role right now.
type State string

// The states the console and /readyz report.
const (
	Stopped State = "stopped"
	Standby State = "standby"
	Leader  State = "leader"
)

// New returns a relay over pool publishing through js. The js context must
// allow at least BatchSize pending async publishes.
func New(pool *pgxpool.Pool, js jetstream.JetStream, opt Options) *Relay {
	opt.setDefaults()
	r := &Relay{pool: pool, js: js, opt: opt, log: opt.Logger.With("component", "relay"), drained: make(chan struct{})}
	r.state.Store(Stopped)
	return r
}

// Run campaigns for leadership and, while leader, publishes until ctx is
// cancelled. Errors are logged and retried with capped, jittered backoff; Run
// returns only ctx's error.
func (r *Relay) Run(ctx context.Context) error {
	defer r.state.Store(Stopped)
	b := backoff{base: 100 * time.Millisecond, max: r.opt.MaxBackoff}
	for {
		led, err := r.campaign(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := r.opt.StandbyInterval
		if err != nil {
			r.recordError(err)
			r.log.Warn("relay error; backing off", "err", err)
			wait = b.next()
		} else if led {
			b.reset()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// campaign tries once to take the lock on a dedicated connection and, if it
// wins, leads until an error or ctx ends. It reports whether it led.
func (r *Relay) campaign(ctx context.Context) (bool, error) {
	cfg := r.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("relay: connect: %w", err)
	}
	defer func() {
		// Closing the session releases the advisory lock.
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&got); err != nil {
			return false, fmt.Errorf("relay: try leader lock: %w", err)
		}
		if got {
			break
		}
		r.state.Store(Standby)
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(r.opt.StandbyInterval):
		}
	}
	r.state.Store(Leader)
	r.log.Info("relay is leader", "name", r.opt.Name)
	defer r.state.Store(Standby)
	err = r.lead(ctx, conn)
	if ctx.Err() != nil {
		return true, nil
	}
	return true, err
}

func (r *Relay) recordError(err error) {
	r.errMu.Lock()
	r.lastErr = err.Error()
	r.errMu.Unlock()
}

// Drained returns a channel that is closed once the leader has nothing left
// to publish (at once if it is asleep); graceful shutdown waits on it to let
// the relay flush.
func (r *Relay) Drained() <-chan struct{} {
	r.drainedMu.Lock()
	defer r.drainedMu.Unlock()
	if r.asleep {
		done := make(chan struct{})
		close(done)
		return done
	}
	return r.drained
}

// setAsleep records whether the leader sleeps with the outbox drained, and
// wakes whoever waits for that.
func (r *Relay) setAsleep(asleep bool) {
	r.drainedMu.Lock()
	defer r.drainedMu.Unlock()
	r.asleep = asleep
	if asleep {
		close(r.drained)
		r.drained = make(chan struct{})
	}
}

var errAckTimeout = errors.New("relay: timed out waiting for publish acks")
