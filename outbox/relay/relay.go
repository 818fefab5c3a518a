// Package relay publishes the outbox to JetStream. One relay leads at a time
// across all replicas, by a lease (outbox/lease, name "relay"): it publishes
// only while its term is valid by its own clock, and a standby takes over
// after the TTL if the leader dies, freezes or is cut off.
//
// Guarantees, each tested against real PostgreSQL and NATS in this package
// and in integration_test/:
//   - every committed event is published, none of a rolled-back transaction;
//     late-committing transactions are never skipped, because rows are read
//     only below pg_snapshot_xmin, where no transaction is still running;
//   - events of one key go out in commit order (see outbox.Append), and stay
//     in order through partial publish failures and stream leader changes:
//     every message names the stream sequence its predecessor must have
//     (Nats-Expected-Last-Sequence), so once one message fails, every later
//     one fails too, and the relay starts again from what was acked;
//   - a term that ended cannot write: the cursor, deletes and parking carry
//     the lease token in SQL, and a publish of the old term that lands late
//     (after SIGCONT, say) finds the chain moved on and is refused;
//   - republishing after a crash is absorbed: a new leader first reads what
//     was published after the persisted cursor and skips it;
//   - a row is deleted only after JetStream has had time to fsync it, and
//     only rows this term published (or that the cursor it inherited
//     covers, once it has checked the cursor belongs to this database);
//   - an event the server will never accept is parked in outbox.parked
//     instead of holding up every later one.
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

	"github.com/cairn-dev/cairn/outbox/lease"

	"github.com/cairn-dev/cairn/outbox/lake"
)

// LeaseName is the relay's lease in outbox.leases.
const LeaseName = "relay"

// Options tune the relay. The zero value of each field means its default.
type Options struct {
	// Lake, if set, takes each range of published rows the relay would
	// delete and moves it into the lake instead (lake.Mover), with the
	// rows' publish acks; it must not block.
	Lake interface{ Move(lake.Range) }
	// OnPublished, if set, is told of every acknowledged round: how many
	// events it published and how long from sending them to the last ack
	// (the cairn_relay_publish_duration_seconds histogram).
	OnPublished func(events int, took time.Duration)
	// OnTerm, if set, runs at the start of each term on the leader's own
	// connection, before its first write: the app ends there the sessions
	// a previous leader may have left holding rows (see app.leaderSession).
	OnTerm func(ctx context.Context, conn *pgx.Conn)
	// BatchSize is how many rows are read and published per round (at most
	// 1000 with AtomicBatches: the server's limit per batch).
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
	// StandbyInterval is how often a standby tries to take the lease.
	StandbyInterval time.Duration
	// LeaseTTL is how long a term lasts without renewal (default 5s): a
	// frozen or cut-off leader is replaced after about this long.
	LeaseTTL time.Duration
	// AckTimeout bounds the wait for a round's publish acks.
	AckTimeout time.Duration
	// CallTimeout bounds every database call and JetStream API request of
	// the leader, so a path that stops answering errors in seconds.
	CallTimeout time.Duration
	// MaxBackoff caps the wait between attempts after an error.
	MaxBackoff time.Duration
	// AtomicBatches publishes each round's events of one stream as one
	// JetStream atomic batch (all or nothing; the streams must allow it,
	// nats-server 2.12+), cut at transaction boundaries, so consumers see
	// a transaction's events all at once or not at all.
	AtomicBatches bool
	// Name identifies this process in logs, outbox.leases and
	// outbox.relay.leader (default host/pid).
	Name   string
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.AtomicBatches {
		o.BatchSize = min(o.BatchSize, maxAtomicBatch)
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
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 5 * time.Second
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// maxAtomicBatch is nats-server's default limit of messages per atomic batch.
const maxAtomicBatch = 1000

// Relay tails the outbox and publishes it. Create it with New and call Run.
type Relay struct {
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	lease *lease.Lease
	opt   Options
	log   *slog.Logger

	state         atomic.Value // State
	published     atomic.Uint64
	publishErrors atomic.Uint64
	parked        atomic.Uint64
	idles         atomic.Uint64
	// perMessageOnce sends the next term's first round one message at a
	// time: an atomic batch failed without saying which message it refused.
	perMessageOnce atomic.Bool
	rewindMu       sync.Mutex
	rewindTo       map[string]uint64 // see rewind
	errMu          sync.Mutex
	lastErr        string
	drained        chan struct{} // closed and replaced whenever the leader finds the outbox empty
	drainedMu      sync.Mutex
	asleep         bool // the leader is asleep with nothing left to publish
}

// State is the relay's role right now.
type State string

// The states the console and /readyz report.
const (
	Stopped State = "stopped"
	Standby State = "standby"
	Leader  State = "leader"
)

// New returns a relay over pool publishing through js. Give it a pool of
// its own (its lease renewals must not wait behind request handlers) and
// a NATS connection of its own whose reconnect buffer is off
// (nats.ReconnectBufSize(-1)), so that no publish is held back and sent
// after the term that made it has ended.
func New(pool *pgxpool.Pool, js jetstream.JetStream, opt Options) *Relay {
	opt.setDefaults()
	r := &Relay{pool: pool, js: js, opt: opt, log: opt.Logger.With("component", "relay"), drained: make(chan struct{})}
	r.lease = lease.New(pool, LeaseName, lease.Options{
		TTL:          opt.LeaseTTL,
		StandbyEvery: opt.StandbyInterval,
		MaxBackoff:   opt.MaxBackoff,
		Holder:       opt.Name,
		Logger:       opt.Logger,
		OnError:      r.recordError,
	})
	r.state.Store(Stopped)
	return r
}

// Run campaigns for the lease and, in each term it wins, publishes until
// the term ends. Errors are logged and retried with capped, jittered
// backoff; a leader that fails gives the lease up so that a standby with a
// healthy path can take over. Run returns only ctx's error.
func (r *Relay) Run(ctx context.Context) error {
	r.state.Store(Standby)
	defer r.state.Store(Stopped)
	return r.lease.Run(ctx, r.lead)
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

var (
	errAckTimeout = errors.New("relay: timed out waiting for publish acks")
	// errFenced: a write carrying this term's token found another token in
	// outbox.leases: a newer term exists, so this one must stop at once.
	errFenced = fmt.Errorf("relay: fenced: %w", lease.ErrLost)
)
