package lake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SeqLookup finds where events without a publish ack were stored: the
// sequence in stream of each of ids found at or after sequence from.
// outbox/lake/streamseq implements it over JetStream.
type SeqLookup interface {
	Seqs(ctx context.Context, stream string, from uint64, ids []string) (map[string]uint64, error)
}

// MoverOptions tune a Mover; zero values mean the defaults.
type MoverOptions struct {
	// Lookup finds the stream sequences of rows without an ack; nil
	// leaves them NULL.
	Lookup SeqLookup
	// MoveTimeout bounds one move (default 1 minute).
	MoveTimeout time.Duration
	// MaxBackoff caps the wait after a failed move (default 10 s).
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// Mover moves published outbox rows into the lake, on a goroutine (Run)
// and connections of its own, so the relay never waits for it: the relay
// hands it each range it used to delete (Move) and goes on publishing.
type Mover struct {
	pool     *pgxpool.Pool
	opt      MoverOptions
	log      *slog.Logger
	secrets  []byte   // JSON: type -> paths to remove
	personal []string // NATS subjects of types with personal fields

	mu    sync.Mutex
	queue []Range
	wake  chan struct{}

	moved   atomic.Uint64
	moves   atomic.Uint64
	errMu   sync.Mutex
	lastErr string
}

// NewMover returns a mover over pool; pass it to the relay and run it with
// Run. The secret and personal fields are read from the event catalog now:
// every event type must be declared before.
func NewMover(pool *pgxpool.Pool, opt MoverOptions) (*Mover, error) {
	if opt.MoveTimeout <= 0 {
		opt.MoveTimeout = time.Minute
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	secrets, err := json.Marshal(SecretPaths())
	if err != nil {
		return nil, fmt.Errorf("lake: encode secret paths: %w", err)
	}
	return &Mover{pool: pool, opt: opt, log: opt.Logger.With("component", "lake"), secrets: secrets,
		personal: personalSubjects(), wake: make(chan struct{}, 1)}, nil
}

// Move queues a range for moving and returns at once: it is the relay's
// hook, called where it used to delete the rows. Ranges of one relay term
// must come in order, each starting where the last one ended; a range
// whose fence fails when its turn comes is dropped, and its rows stay in
// the outbox for the next term (which moves them as rows without acks).
func (m *Mover) Move(r Range) {
	m.mu.Lock()
	m.queue = append(m.queue, r)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// MoveNow moves one range in one transaction and returns how many events
// entered the lake. Errors: ErrFenced, or the database's or a look-up's.
func (m *Mover) MoveNow(ctx context.Context, r Range) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opt.MoveTimeout)
	defer cancel()
	c, err := m.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("lake: connect: %w", err)
	}
	defer c.Release()
	n, err := m.move(ctx, c.Conn(), r)
	if noPartition(err) {
		if perr := EnsurePartitions(ctx, m.pool); perr != nil {
			return 0, errors.Join(err, perr)
		}
		n, err = m.move(ctx, c.Conn(), r)
	}
	if err != nil {
		return 0, err
	}
	m.moved.Add(uint64(n))
	m.moves.Add(1)
	return n, nil
}

// Run moves queued ranges until ctx ends, oldest first. A failed move is
// retried, with capped, jittered backoff, together with the ranges queued
// behind it; a fenced one is dropped. It also keeps this month's and next
// month's partitions made. Ranges still queued when ctx ends stay in the
// outbox for the next leader.
func (m *Mover) Run(ctx context.Context) error {
	if err := EnsurePartitions(ctx, m.pool); err != nil && ctx.Err() == nil {
		m.recordError(err)
		m.log.Warn("lake: make partitions", "err", err)
	}
	partitions := time.NewTicker(12 * time.Hour)
	defer partitions.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-partitions.C:
			if err := EnsurePartitions(ctx, m.pool); err != nil && ctx.Err() == nil {
				m.recordError(err)
				m.log.Warn("lake: make partitions", "err", err)
			}
			continue
		case <-m.wake:
		}
		for {
			r, ok := m.next()
			if !ok {
				break
			}
			_, err := m.MoveNow(ctx, r)
			switch {
			case err == nil:
				m.done(r)
				failures = 0
				continue
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, ErrFenced):
				m.log.Info("lake: a move of an ended relay term was dropped; the next leader moves its rows")
				m.dropTerm(r.Fence.Token)
				continue
			}
			m.recordError(err)
			m.log.Warn("lake: move failed; retrying", "err", err)
			failures++
			if !sleep(ctx, backoff(failures, m.opt.MaxBackoff)) {
				return ctx.Err()
			}
		}
	}
}

// maxMergedAcks bounds how many queued ranges one move takes when the
// mover fell behind.
const maxMergedAcks = 20_000

// next returns the queued ranges at the head of the queue merged into one:
// consecutive, of one term, up to maxMergedAcks acks. The queue keeps them
// until done.
func (m *Mover) next() (Range, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return Range{}, false
	}
	r := m.queue[0]
	r.Acks = append([]Ack(nil), r.Acks...)
	for _, n := range m.queue[1:] {
		if n.Fence.Token != r.Fence.Token || n.From != r.To || !n.CreatedBefore.IsZero() || !r.CreatedBefore.IsZero() ||
			len(r.Acks)+len(n.Acks) > maxMergedAcks {
			break
		}
		r.To = n.To
		r.Acks = append(r.Acks, n.Acks...)
	}
	return r, true
}

// done removes the ranges a successful move covered.
func (m *Mover) done(r Range) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := 0
	for i < len(m.queue) && m.queue[i].Fence.Token == r.Fence.Token && !r.To.before(m.queue[i].To) {
		i++
	}
	m.queue = m.queue[max(i, 1):]
}

// dropTerm removes every queued range of a fenced term.
func (m *Mover) dropTerm(token int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.queue[:0]
	for _, r := range m.queue {
		if r.Fence.Token != token {
			kept = append(kept, r)
		}
	}
	m.queue = kept
}

func (c Cursor) before(o Cursor) bool {
	return c.TxID < o.TxID || (c.TxID == o.TxID && c.Seq < o.Seq)
}

// MoverMetrics is what the mover reports.
type MoverMetrics struct {
	Moved     uint64 // events moved into the lake by this process
	Moves     uint64 // transactions that moved them
	Queued    int    // ranges waiting
	LastError string
}

// Metrics returns the mover's counters.
func (m *Mover) Metrics() MoverMetrics {
	m.mu.Lock()
	queued := len(m.queue)
	m.mu.Unlock()
	m.errMu.Lock()
	defer m.errMu.Unlock()
	return MoverMetrics{Moved: m.moved.Load(), Moves: m.moves.Load(), Queued: queued, LastError: m.lastErr}
}

func (m *Mover) recordError(err error) {
	m.errMu.Lock()
	m.lastErr = err.Error()
	m.errMu.Unlock()
}

// backoff is capped exponential backoff with full jitter.
func backoff(failures int, maxWait time.Duration) time.Duration {
	d := 100 * time.Millisecond << min(failures, 20)
	if d > maxWait || d <= 0 {
		d = maxWait
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// rollbackTimeout bounds the ROLLBACK of a failed move.
const rollbackTimeout = 5 * time.Second
