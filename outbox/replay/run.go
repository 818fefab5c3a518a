// Package replay runs consumers' handlers over the lake: it rebuilds a
// rebuildable consumer (its state reset, its handler over history, then
// live again from the stream sequence after the last replayed event), dry
// runs an effectful one (its outside calls recorded instead of made, its
// database changes rolled back), and seeds a new consumer that starts in
// the past. Events reach the handler as the live runtime hands them over:
// personal fields opened while their person's key exists, older versions
// upcast to the one the handler reads.
//
// The consumer runtime (outbox/consumer) runs replays on the replica that
// holds the consumer's lease, fenced by its term: see Rebuild, Seed and
// DryRun, and the handoff they return. Runs are recorded in replay.runs
// (Runs) and requested over HTTP (Service) or `cairn replay`.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
)

// Env is what a replay runs on.
type Env struct {
	// DB is where the lake is read and the handlers' transactions run.
	DB *pgxpool.Pool
	// Fence, if set, runs last in every transaction a replay commits; its
	// error rolls the transaction back and ends the replay. The consumer
	// runtime checks there that its term of the consumer's lease holds.
	Fence func(ctx context.Context, tx pgx.Tx) error
	// Progress, if set, is told after every batch.
	Progress func(Progress)
	Log      *slog.Logger
}

// Progress is how far a replay got.
type Progress struct {
	// Processed events: handled, or failed (parked in a rebuild, recorded
	// in a dry run).
	Processed int64
	Failed    int64
	// Effects recorded by a dry run.
	Effects int64
	// Position is the last position read.
	Position int64
}

// Overlap is how many stream sequences before the last replayed one the
// live consumer starts at after a rebuild or a seeding: the events of the
// overlap that were replayed are recorded in the inbox, so the live side
// skips them, and any event of it the lake did not have yet is handled
// live. Within a stream, sequences follow positions (the relay's
// expected-sequence chain), so the overlap is a margin, not a need.
const Overlap = 1000

// Handoff is where a rebuilt or seeded consumer goes on live.
type Handoff struct {
	// Stream is the consumer's stream.
	Stream string
	// LastSeq: every event of the consumer's types stored in Stream up to
	// this sequence was replayed (or lies outside the range asked for).
	LastSeq uint64
	// StartSeq is where the durable consumer is to deliver from:
	// LastSeq+1-Overlap (at least 1).
	StartSeq uint64
	Progress
}

// Rebuild resets sub's state (sub.Reset and the consumer's inbox, in one
// transaction) and runs its handler over the events of rng in position
// order, catching up with the lake's head while it grows, in batches of
// one transaction each (sub.Batch if it has one). An event whose handler
// fails is tried up to sub.MaxAttempts times and then parked as a dead
// letter, as live. It returns where live consumption must resume. The
// caller must have stopped live consumption first, and must start it at
// Handoff.StartSeq. Errors: ctx's, Fence's, the reset's, the database's.
func Rebuild(ctx context.Context, env Env, sub outbox.Subscription, rng Range) (Handoff, error) {
	x := newExec(ctx, env, sub)
	err := pgx.BeginFunc(ctx, env.DB, func(tx pgx.Tx) error {
		if sub.Reset != nil {
			if err := sub.Reset(ctx, tx); err != nil {
				return fmt.Errorf("replay: reset %s: %w", sub.Consumer, err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.processed WHERE consumer = $1`, sub.Consumer); err != nil {
			return fmt.Errorf("replay: reset %s's inbox: %w", sub.Consumer, err)
		}
		return x.fence(ctx, tx)
	})
	if err != nil {
		return Handoff{}, err
	}
	return x.catchUp(ctx, rng)
}

// Seed is Rebuild for a consumer that starts in the past (sub.Start): the
// events from its start on, then the handoff to live.
func Seed(ctx context.Context, env Env, sub outbox.Subscription) (Handoff, error) {
	return Rebuild(ctx, env, sub, Range{FromTime: sub.Start.Time()})
}

// catchUp replays up to the head, again and again while the lake grows,
// until a pass finds less than a page; then it records the overlap in the
// inbox and returns the handoff.
func (x *exec) catchUp(ctx context.Context, rng Range) (Handoff, error) {
	rd := newReader(x.env.DB, x.sub, rng)
	var h head
	after := int64(0)
	bounded := rng.ToPosition > 0 || !rng.ToTime.IsZero()
	for {
		var err error
		if h, err = readHead(ctx, x.env.DB); err != nil {
			return Handoff{}, err
		}
		before := x.p.Processed
		if _, err := rd.pages(ctx, after, h.Position, x.rebuildBatch); err != nil {
			return Handoff{}, err
		}
		after = h.Position
		if x.p.Processed-before < pageSize || (rng.ToPosition > 0 && after >= rng.ToPosition) {
			break
		}
	}
	x.p.Position = max(x.p.Position, after)
	ho := Handoff{Stream: streamOf(x.sub), Progress: x.p}
	ho.LastSeq = h.Streams[ho.Stream]
	if bounded {
		ho.LastSeq = x.maxSeq
	}
	ho.StartSeq = 1
	if ho.LastSeq >= Overlap {
		ho.StartSeq = ho.LastSeq + 1 - Overlap
	}
	var ids []string
	for _, t := range x.tail.all() {
		if t.seq >= ho.StartSeq {
			ids = append(ids, t.id)
		}
	}
	err := pgx.BeginFunc(ctx, x.env.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO inbox.processed (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
			x.sub.Consumer, ids); err != nil {
			return fmt.Errorf("replay: record the overlap in the inbox: %w", err)
		}
		return x.fence(ctx, tx)
	})
	return ho, err
}

// exec runs one replay's batches.
type exec struct {
	ctx    context.Context
	env    Env
	sub    outbox.Subscription
	log    *slog.Logger
	p      Progress
	maxSeq uint64 // highest stream sequence replayed
	tail   *ring  // the last events replayed, for the overlap
}

func newExec(ctx context.Context, env Env, sub outbox.Subscription) *exec {
	log := env.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sub.MaxAttempts <= 0 {
		sub.MaxAttempts = 5
	}
	return &exec{ctx: ctx, env: env, sub: sub, log: log.With("component", "replay", "consumer", sub.Consumer), tail: newRing(4 * Overlap)}
}

func (x *exec) fence(ctx context.Context, tx pgx.Tx) error {
	if x.env.Fence == nil {
		return nil
	}
	return x.env.Fence(ctx, tx)
}

func (x *exec) progress(evs []Event) {
	x.p.Position = evs[len(evs)-1].Position
	if x.env.Progress != nil {
		x.env.Progress(x.p)
	}
}

func (x *exec) delivery(e Event) outbox.Delivery {
	return outbox.Delivery{Event: e.CloudEvent, Subject: outbox.Subject(e.Type, x.sub.Visibility), Attempt: 1}
}

// rebuildBatch handles a page in one transaction; if the handler fails on
// it, the page is done again one event at a time (slowBatch).
func (x *exec) rebuildBatch(evs []Event) error {
	ctx := x.ctx
	err := pgx.BeginFunc(ctx, x.env.DB, func(tx pgx.Tx) error {
		if x.sub.Batch != nil {
			ds := make([]outbox.Delivery, len(evs))
			for i, e := range evs {
				ds[i] = x.delivery(e)
			}
			if err := callBatch(ctx, x.sub.Batch, tx, ds); err != nil {
				return handlerFailed{err}
			}
		} else {
			for _, e := range evs {
				if err := callHandler(ctx, x.sub.Handle, tx, x.delivery(e)); err != nil {
					return handlerFailed{err}
				}
			}
		}
		return x.fence(ctx, tx)
	})
	var hf handlerFailed
	if errors.As(err, &hf) {
		err = x.slowBatch(ctx, evs)
	}
	if err != nil {
		return err
	}
	for _, e := range evs {
		x.p.Processed++
		if e.StreamSeq > 0 && e.Stream == streamOf(x.sub) {
			x.maxSeq = max(x.maxSeq, e.StreamSeq)
			x.tail.add(e.ID, e.StreamSeq)
		}
	}
	x.progress(evs)
	return nil
}

// handlerFailed marks a handler's error within a batch.
type handlerFailed struct{ err error }

func (h handlerFailed) Error() string { return h.err.Error() }

// slowBatch handles the events one at a time, each in a savepoint: one
// that fails MaxAttempts times (or permanently) is parked as a dead letter
// and the others go on, as live.
func (x *exec) slowBatch(ctx context.Context, evs []Event) error {
	return pgx.BeginFunc(ctx, x.env.DB, func(tx pgx.Tx) error {
		for _, e := range evs {
			d := x.delivery(e)
			var err error
			for d.Attempt = 1; d.Attempt <= x.sub.MaxAttempts; d.Attempt++ {
				err = pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return callHandler(ctx, x.sub.Handle, sp, d) })
				if err == nil || outbox.IsPermanent(err) {
					break
				}
				time.Sleep(time.Duration(d.Attempt) * 20 * time.Millisecond)
			}
			if err == nil {
				continue
			}
			x.p.Failed++
			x.log.Error("replayed event parked as a dead letter", "event_id", e.ID, "position", e.Position, "err", err)
			if err := park(ctx, tx, x.sub, d, min(d.Attempt, x.sub.MaxAttempts), err); err != nil {
				return err
			}
		}
		return x.fence(ctx, tx)
	})
}

// park writes a dead letter of the consumer in tx.
func park(ctx context.Context, tx pgx.Tx, sub outbox.Subscription, d outbox.Delivery, attempts int, cause error) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	raw, err := jsonEvent(d.Event)
	if err != nil {
		return err
	}
	raw, _ = outbox.RedactEvent(raw)
	_, err = tx.Exec(ctx, `INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = inbox.dead_letters.attempts + EXCLUDED.attempts,
			last_error = EXCLUDED.last_error, failed_at = now()`,
		id, sub.Consumer, d.Event.ID, d.Event.Type, d.Subject, d.Event.Subject, raw, attempts, "replay: "+cause.Error())
	if err != nil {
		return fmt.Errorf("replay: park dead letter: %w", err)
	}
	return nil
}

// callHandler turns a handler's panic into an error.
func callHandler(ctx context.Context, h outbox.Handler, tx pgx.Tx, d outbox.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, tx, d)
}

func callBatch(ctx context.Context, h outbox.BatchHandler, tx pgx.Tx, ds []outbox.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("batch handler panicked: %v", p)
		}
	}()
	return h(ctx, tx, ds)
}

func callEffect(ctx context.Context, e outbox.Effect, db *pgxpool.Pool, d outbox.Delivery) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("effect panicked: %v", p)
		}
	}()
	return e(ctx, db, d)
}

func streamOf(s outbox.Subscription) string {
	if s.Visibility == outbox.Internal {
		return outbox.InternalStream
	}
	return outbox.PublicStream
}

// ring keeps the last n (event id, stream sequence) pairs added.
type ring struct {
	buf  []tailEvent
	next int
	full bool
}

type tailEvent struct {
	id  string
	seq uint64
}

func newRing(n int) *ring { return &ring{buf: make([]tailEvent, n)} }

func (r *ring) add(id string, seq uint64) {
	r.buf[r.next] = tailEvent{id, seq}
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring) all() []tailEvent {
	if !r.full {
		return r.buf[:r.next]
	}
	return append(append([]tailEvent(nil), r.buf[r.next:]...), r.buf[:r.next]...)
}
