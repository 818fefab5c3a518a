package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// parkAndAck parks the event as a dead letter, then acks it. It holds the
// lane until the dead letter is written: if the write fails (the database
// is down, say), it retries with backoff while the message stays in
// progress, so the key's later events never overtake it. It gives up only
// when the term ends; the message is then redelivered to the next holder.
func (r *Runtime) parkAndAck(ctx context.Context, w *work, m jetstream.Msg, ev outbox.CloudEvent, attempts int, cause error) {
	log := r.log.With("consumer", w.s.Consumer, "subject", m.Subject(), "event_id", ev.ID)
	wait := 200 * time.Millisecond
	for w.term.Valid() {
		err := r.park(ctx, w.s.Consumer, m, ev, attempts, cause, w.term)
		if err == nil {
			w.st.n.deadLettered.Add(1)
			log.Error("event parked as a dead letter", "attempts", attempts, "err", cause)
			if err := m.Ack(); err != nil {
				log.Warn("ack of parked event failed", "err", err)
			}
			return
		}
		if ctx.Err() != nil || errors.Is(err, errFenced) {
			return
		}
		log.Error("could not park dead letter; its key waits until it is parked", "err", err, "retry_in", wait)
		if !sleepCtx(ctx, jitter(wait)) {
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
}
