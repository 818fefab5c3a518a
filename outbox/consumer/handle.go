package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// deliver handles one message until it succeeds, is parked as a dead
// letter, or ctx ends (then it stays unacked and is redelivered later).
func (r *Runtime) deliver(ctx context.Context, w *work, m jetstream.Msg) {
	s := w.s
	log := r.log.With("consumer", s.Consumer, "subject", m.Subject())
	var ev outbox.CloudEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
		r.parkAndAck(ctx, s, m, ev, 1, fmt.Errorf("not a CloudEvents JSON document: %v", err))
		return
	}
	attempt := 1
	if meta, err := m.Metadata(); err == nil && meta.NumDelivered > 0 {
		attempt = int(meta.NumDelivered)
	}
	me := &attempt // this delivery's identity at the gate
	for {
		if !w.gate.wait(ctx, me) {
			return
		}
		err := r.handleOnce(ctx, s, outbox.Delivery{Event: ev, Subject: m.Subject(), Attempt: attempt}, nil)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			w.gate.reopen(me)
			if err := m.Ack(); err != nil {
				log.Warn("ack failed; the event will be redelivered and skipped by the inbox", "event_id", ev.ID, "err", err)
			}
			return
		}
		if outbox.IsPermanent(err) { // retrying cannot help: undecodable data, say
			w.gate.reopen(me)
			r.parkAndAck(ctx, s, m, ev, attempt, err)
			return
		}
		if outbox.IsUnavailable(err) {
			if w.gate.close(me) {
				log.Warn("outside system unavailable; consumer paused", "event_id", ev.ID, "err", err)
				sleepCtx(ctx, jitter(r.opt.PausedRetry))
			}
			continue
		}
		w.gate.reopen(me)
		if attempt >= s.MaxAttempts {
			r.parkAndAck(ctx, s, m, ev, attempt, err)
			return
		}
		wait := jitter(min(200*time.Millisecond<<min(attempt-1, 16), s.MaxBackoff))
		log.Warn("handler failed; will retry", "event_id", ev.ID, "attempt", attempt, "wait", wait, "err", err)
		if !sleepCtx(ctx, wait) {
			return
		}
		attempt++
	}
}

var errHandledMeanwhile = errors.New("consumer: event handled meanwhile")

// handleOnce runs the handler in a transaction with the inbox record; then,
// if given, runs also in it. An event already in the inbox is a success
// with no effect.
func (r *Runtime) handleOnce(ctx context.Context, s outbox.Subscription, d outbox.Delivery, also func(pgx.Tx) error) (err error) {
	corr := d.Event.CorrelationID
	if corr == "" {
		corr = d.Event.ID
	}
	hctx := outbox.WithMetadata(ctx, outbox.Metadata{CorrelationID: corr, CausationID: d.Event.ID, TraceParent: d.Event.TraceParent})
	err = pgx.BeginFunc(hctx, r.pool, func(tx pgx.Tx) error {
		var done bool
		// A plain read first: the transaction takes no id (and so does not
		// hold back the relay) until the handler writes.
		if err := tx.QueryRow(hctx, `SELECT EXISTS (SELECT 1 FROM inbox.processed WHERE consumer = $1 AND event_id = $2)`,
			s.Consumer, d.Event.ID).Scan(&done); err != nil {
			return fmt.Errorf("consumer: read inbox: %w", err)
		}
		if done {
			if also != nil {
				return also(tx)
			}
			return nil
		}
		if err := callHandler(hctx, s.Handle, tx, d); err != nil {
			return err
		}
		tag, err := tx.Exec(hctx, `INSERT INTO inbox.processed (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, s.Consumer, d.Event.ID)
		if err != nil {
			return fmt.Errorf("consumer: record in inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errHandledMeanwhile
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if errors.Is(err, errHandledMeanwhile) {
		return nil
	}
	return err
}

// callHandler turns a handler's panic into an error so one bad event cannot
// stop the consumer.
func callHandler(ctx context.Context, h outbox.Handler, tx pgx.Tx, d outbox.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, tx, d)
}

func (r *Runtime) parkAndAck(ctx context.Context, s outbox.Subscription, m jetstream.Msg, ev outbox.CloudEvent, attempts int, cause error) {
	log := r.log.With("consumer", s.Consumer, "subject", m.Subject(), "event_id", ev.ID)
	if err := r.park(ctx, s.Consumer, m, ev, attempts, cause); err != nil {
		// Leave it unacked: it is redelivered and parked next time.
		log.Error("could not park dead letter", "err", err)
		return
	}
	log.Error("event parked as a dead letter", "attempts", attempts, "err", cause)
	if err := m.Ack(); err != nil {
		log.Warn("ack of parked event failed", "err", err)
	}
}
