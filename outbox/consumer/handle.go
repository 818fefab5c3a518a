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
	"github.com/cairn-dev/cairn/outbox/lease"
)

// deliver handles one message until it succeeds, is parked as a dead
// letter, or the term ends (then it stays unacked and is redelivered to
// the next holder).
func (r *Runtime) deliver(ctx context.Context, w *work, m jetstream.Msg) {
	s := w.s
	log := r.log.With("consumer", s.Consumer, "subject", m.Subject())
	var ev outbox.CloudEvent
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
		r.parkAndAck(ctx, w, m, ev, 1, fmt.Errorf("not a CloudEvents JSON document: %v", err))
		return
	}
	// An older version of the handler's event reaches it upcast.
	if err := outbox.UpcastEvent(&ev, s.EventType); err != nil {
		r.parkAndAck(ctx, w, m, ev, 1, outbox.Permanent(err))
		return
	}
	attempt := 1
	if meta, err := m.Metadata(); err == nil {
		if meta.NumDelivered > 0 {
			attempt = int(meta.NumDelivered)
		}
		if meta.NumDelivered > 1 || meta.Sequence.Stream <= w.redeliverUpTo {
			w.st.n.redelivered.Add(1)
		}
	}
	me := &attempt // this delivery's identity at the gate
	var eff effectResult
	for {
		if !w.st.waitWhileHeld(ctx) || !w.gate.wait(ctx, me) {
			return
		}
		// The last moment to notice a term that ended: the fence in the
		// inbox insert catches one that ends during the handler.
		if !w.term.Valid() {
			return
		}
		d := outbox.Delivery{Event: ev, Subject: m.Subject(), Attempt: attempt, Term: w.term.CheckBeforeEffect}
		err := r.handleOnce(ctx, s, d, w.term, &eff, nil)
		if ctx.Err() != nil || errors.Is(err, errFenced) {
			return
		}
		if err != nil {
			w.st.n.failed.Add(1)
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
			r.parkAndAck(ctx, w, m, ev, attempt, err)
			return
		}
		if outbox.IsUnavailable(err) {
			if w.gate.close(me, err.Error()) {
				log.Warn("outside system unavailable; consumer paused", "event_id", ev.ID, "err", err)
				sleepCtx(ctx, jitter(r.opt.PausedRetry))
			}
			continue
		}
		w.gate.reopen(me)
		if attempt >= s.MaxAttempts {
			r.parkAndAck(ctx, w, m, ev, attempt, err)
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

// handleOnce handles one event: if it is not in the inbox yet, it runs the
// subscription's Effect (once per delivery: eff keeps a result that
// succeeded), then the handler in a transaction that also records the event
// in the inbox, fenced by term's token (nil: no fence, for an admin retry);
// then, if given, runs also in it. An event already in the inbox is a
// success with no effect. errFenced: the term is over.
func (r *Runtime) handleOnce(ctx context.Context, s outbox.Subscription, d outbox.Delivery, term *lease.Term, eff *effectResult, also func(pgx.Tx) error) (err error) {
	corr := d.Event.CorrelationID
	if corr == "" {
		corr = d.Event.ID
	}
	hctx := outbox.WithMetadata(ctx, outbox.Metadata{CorrelationID: corr, CausationID: d.Event.ID, TraceParent: d.Event.TraceParent})
	hctx, endSpan := processSpan(hctx, s, d)
	defer func() { endSpan(err) }()
	done, err := r.processed(hctx, s.Consumer, d.Event.ID)
	if err != nil {
		return err
	}
	n := r.counts(s.Consumer)
	if done {
		n.duplicates.Add(1)
		if also != nil {
			return pgx.BeginFunc(hctx, r.db, also)
		}
		return nil
	}
	if s.Effect != nil {
		if err := r.runEffect(hctx, s, &d, eff); err != nil {
			return err
		}
	}
	err = pgx.BeginFunc(hctx, r.db, func(tx pgx.Tx) error {
		if err := callHandler(hctx, s.Handle, tx, d); err != nil {
			return err
		}
		if err := record(hctx, tx, s.Consumer, d.Event.ID, term); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	switch {
	case errors.Is(err, errHandledMeanwhile):
		n.duplicates.Add(1)
		return nil
	case err == nil:
		n.handled.Add(1)
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
