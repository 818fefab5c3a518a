// Package lease elects one holder per name among all of Cairn's replicas: the
// relay's leader, and the one replica that runs each consumer. Leadership is
// a lease row in PostgreSQL (outbox.leases), not a session-level advisory
// lock: a lock outlives a frozen or cut-off holder until the database notices
// the dead TCP session, which on Linux defaults takes over two hours.
//
// The rules, which make two holders of one name impossible at any moment:
//   - a holder acts only while its term is valid by its own monotonic clock:
//     until the moment it *sent* its last successful acquire or renew, plus
//     the TTL. The database set expires_at to its own clock at execution plus
//     the TTL, so the holder's local expiry always comes first;
//   - a standby acquires only a lease whose expires_at has passed by the
//     database's clock, and increments its token;
//   - a term that expired locally is over for good, even if the holder wakes
//     up (after SIGSTOP, say) before anyone took over: it campaigns again and
//     gets a new token, so "has it won leadership again?" has one answer.
//
// The token is a fencing token: a holder's writes can carry it (for example
// the consumer runtime's inbox insert, the relay's cursor), so a write from a
// term that ended is refused by the database even if the holder did not yet
// notice. Outside effects cannot be fenced that way; Term.Valid is checked
// just before them, and the term's context is cancelled when it ends.
//
// Costs: a crashed holder is replaced after the TTL (default 5 s) plus up to
// one standby poll, instead of at once; a graceful stop releases the lease,
// so a standby takes over within one poll.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune a lease; zero values mean the defaults.
type Options struct {
	// TTL is how long a term lasts without a renewal (default 5s). A
	// crashed or frozen holder is replaced after about this long.
	TTL time.Duration
	// RenewEvery is how often the holder renews (default TTL/5), so that a
	// few renewals can fail in a row before the term expires.
	RenewEvery time.Duration
	// StandbyEvery is how often a standby tries to acquire (default 1s).
	StandbyEvery time.Duration
	// MaxBackoff caps the wait after an error (default 10s).
	MaxBackoff time.Duration
	// Holder names this process in outbox.leases (default host/pid).
	Holder string
	Logger *slog.Logger
	// OnError is told about every error: a failed database call, or an
	// error the lead function returned.
	OnError func(error)
}

func (o *Options) setDefaults() {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Second
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = o.TTL / 5
	}
	if o.StandbyEvery <= 0 {
		o.StandbyEvery = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Lease campaigns for one name. Create it with New and call Run.
type Lease struct {
	db   *pgxpool.Pool
	name string
	opt  Options
	log  *slog.Logger

	mu     sync.Mutex
	status Status
	term   *Term // while Holding
}

// New returns a lease on name over db. Give leases a pool of their own, not
// the one request handlers use: a renewal that waits for a free connection
// can lose the lease.
func New(db *pgxpool.Pool, name string, opt Options) *Lease {
	opt.setDefaults()
	return &Lease{db: db, name: name, opt: opt, log: opt.Logger.With("lease", name),
		status: Status{State: Stopped}}
}

// Name is the lease's name.
func (l *Lease) Name() string { return l.name }

// Holder is the name this process holds leases under.
func (l *Lease) Holder() string { return l.opt.Holder }

// ErrExpired ends a term whose holder could not renew it in time (a frozen
// process, a database out of reach); ErrLost one whose renewal found that
// someone else holds the lease.
var (
	ErrExpired = errors.New("lease: term expired before it could be renewed")
	ErrLost    = errors.New("lease: taken over by another holder")
)

// Run campaigns until ctx ends. Each time it wins a term, it calls lead with
// a context that is cancelled when the term ends (expired, lost, or ctx
// done) and waits for lead to return before campaigning again, so the work
// of two terms never overlaps. When lead returns by itself (an error, or
// nil), the lease is released so that a standby can take over at once, and
// Run backs off before campaigning again if lead failed. Run returns ctx's
// error.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context, t *Term) error) error {
	defer l.setState(Stopped, nil)
	b := backoff{base: 100 * time.Millisecond, max: l.opt.MaxBackoff}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t, err := l.acquire(ctx)
		wait := l.opt.StandbyEvery
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			l.report(err)
			wait = b.next()
		case t != nil:
			began := time.Now()
			err = l.hold(ctx, t, lead)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				l.report(err)
				// A term that went well for a while before it failed
				// is no failure loop: start the backoff afresh.
				if time.Since(began) >= l.opt.MaxBackoff {
					b.reset()
				}
				// Give the standbys the first try: a holder that failed
				// (NATS out of its reach, say) must not win back the lease
				// it just released before a healthy replica can poll.
				wait = max(b.next(), 2*l.opt.StandbyEvery)
			} else {
				b.reset()
			}
		}
		if !sleep(ctx, jitter(wait)) {
			return ctx.Err()
		}
	}
}

// hold runs lead for one term, renewing it meanwhile, until lead returns or
// the term ends.
func (l *Lease) hold(ctx context.Context, t *Term, lead func(context.Context, *Term) error) error {
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.setState(Holding, t)
	l.log.Info("lease acquired", "holder", l.opt.Holder, "token", t.Token)

	done := make(chan error, 1)
	go func() { done <- lead(tctx, t) }()
	renewed := make(chan renewal, 1)
	go l.renewLoop(tctx, t, renewed)

	expire := time.NewTimer(t.Remaining())
	defer expire.Stop()
	var end error
	for end == nil {
		select {
		case err := <-done:
			cancel(context.Canceled)
			l.release(t)
			return err
		case <-ctx.Done():
			end = ctx.Err()
		case <-expire.C:
			if t.Valid() {
				expire.Reset(t.Remaining())
				continue
			}
			end = ErrExpired
		case r := <-renewed:
			switch {
			case r.err == nil:
				expire.Reset(t.Remaining())
			case errors.Is(r.err, ErrLost):
				end = ErrLost
			default:
				// Transient: the next renewal may succeed before the
				// term runs out; if not, the timer ends it.
				l.report(r.err)
			}
		}
	}
	t.end()
	cancel(end)
	err := <-done
	l.setState(Standby, nil)
	if ctx.Err() != nil {
		l.release(t)
		return nil
	}
	l.log.Warn("lease term ended", "token", t.Token, "why", end)
	if err != nil && !errors.Is(err, context.Canceled) {
		l.report(err)
	}
	return end
}

type renewal struct{ err error }

// renewLoop renews t every RenewEvery until tctx ends, reporting each
// result. Each call is bounded so that a database out of reach cannot hold
// it past the term.
func (l *Lease) renewLoop(tctx context.Context, t *Term, out chan<- renewal) {
	tick := time.NewTicker(l.opt.RenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-tctx.Done():
			return
		case <-tick.C:
		}
		err := l.renew(tctx, t)
		if tctx.Err() != nil {
			return
		}
		select {
		case out <- renewal{err}:
		case <-tctx.Done():
			return
		}
		if errors.Is(err, ErrLost) {
			return
		}
	}
}

func (l *Lease) report(err error) {
	l.mu.Lock()
	l.status.LastError = err.Error()
	l.mu.Unlock()
	if l.opt.OnError != nil {
		l.opt.OnError(err)
	}
	l.log.Warn("lease error", "err", err)
}

// acquire takes the lease if it is free or expired, returning the new term,
// or nil when someone else holds it.
func (l *Lease) acquire(ctx context.Context) (*Term, error) {
	cctx, cancel := context.WithTimeout(ctx, l.callTimeout())
	defer cancel()
	sent := now()
	var token int64
	err := l.db.QueryRow(cctx, acquireSQL, l.name, l.opt.Holder, l.opt.TTL.Seconds()).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		var st Status
		err = l.db.QueryRow(cctx, holderSQL, l.name).Scan(&st.Holder, &st.Token)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("lease %s: read holder: %w", l.name, err)
		}
		l.mu.Lock()
		l.status.State, l.status.Holder, l.status.Token = Standby, st.Holder, st.Token
		l.mu.Unlock()
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s: acquire: %w", l.name, err)
	}
	t := &Term{Name: l.name, Token: token, Holder: l.opt.Holder, ttl: l.opt.TTL}
	t.extend(sent, l.opt.TTL)
	return t, nil
}

func (l *Lease) renew(ctx context.Context, t *Term) error {
	cctx, cancel := context.WithTimeout(ctx, l.callTimeout())
	defer cancel()
	sent := now()
	tag, err := l.db.Exec(cctx, renewSQL, l.name, l.opt.Holder, t.Token, l.opt.TTL.Seconds())
	if err != nil {
		return fmt.Errorf("lease %s: renew: %w", l.name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLost
	}
	t.extend(sent, l.opt.TTL)
	return nil
}

// release ends the term in the database at once, so a standby need not
// wait for the TTL. Best effort: if it fails, the lease expires anyway.
func (l *Lease) release(t *Term) {
	t.end()
	ctx, cancel := context.WithTimeout(context.Background(), l.callTimeout())
	defer cancel()
	if _, err := l.db.Exec(ctx, releaseSQL, l.name, l.opt.Holder, t.Token); err != nil {
		l.log.Warn("lease release failed; it expires on its own", "err", err)
	}
	l.setState(Standby, nil)
}

// callTimeout bounds one database call: long enough for a busy database,
// short enough to leave the term time for another renewal.
func (l *Lease) callTimeout() time.Duration { return max(l.opt.TTL/3, 100*time.Millisecond) }

const acquireSQL = `
INSERT INTO outbox.leases AS l (name, holder, token, acquired_at, renewed_at, expires_at)
VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE
   SET holder = excluded.holder, token = l.token + 1, acquired_at = excluded.acquired_at,
       renewed_at = excluded.renewed_at, expires_at = excluded.expires_at
 WHERE l.expires_at < clock_timestamp()
RETURNING token`

const renewSQL = `
UPDATE outbox.leases
   SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => $4)
 WHERE name = $1 AND holder = $2 AND token = $3`

const releaseSQL = `
UPDATE outbox.leases SET expires_at = clock_timestamp()
 WHERE name = $1 AND holder = $2 AND token = $3`

const holderSQL = `SELECT holder, token FROM outbox.leases WHERE name = $1`

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

func jitter(d time.Duration) time.Duration { return d*3/4 + rand.N(d/2+1) }

type backoff struct {
	base, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.base
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
