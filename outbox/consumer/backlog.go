package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog is what one consumer has yet to handle, as JetStream counts it:
// the same answer from every replica.
type Backlog struct {
	Consumer string `json:"consumer"`
	// Pending messages match the consumer's filter and were not delivered
	// yet.
	Pending uint64 `json:"pending"`
	// AckPending messages were delivered and not acked yet: being handled,
	// retried, or waiting behind a pause.
	AckPending int `json:"ack_pending"`
	// OldestUnhandled is when the oldest message not yet acked was stored
	// in the stream; zero when there is none. Its age is the consumer's lag.
	OldestUnhandled time.Time `json:"oldest_unhandled,omitzero"`
}

// Lag is how long the oldest unhandled event has waited, at now; 0 when
// nothing waits.
func (b Backlog) Lag(now time.Time) time.Duration {
	if b.OldestUnhandled.IsZero() || now.Before(b.OldestUnhandled) {
		return 0
	}
	return now.Sub(b.OldestUnhandled)
}

// Backlogs asks JetStream about every consumer: one consumer-info request
// each, and for a consumer with something pending one direct read of the
// first message after its ack floor (the oldest not yet acked). A consumer
// not created yet has nothing pending. Sorted by name. Errors: NATS's,
// naming the consumer.
func (r *Runtime) Backlogs(ctx context.Context) ([]Backlog, error) {
	streams := map[string]jetstream.Stream{}
	out := make([]Backlog, 0, len(r.subs))
	for name, s := range r.subs {
		b := Backlog{Consumer: name}
		stream := streamOf(s)
		cons, err := r.js.Consumer(ctx, stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			out = append(out, b)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: info: %w", name, err)
		}
		info := cons.CachedInfo()
		b.Pending, b.AckPending = info.NumPending, info.NumAckPending
		if b.Pending > 0 || b.AckPending > 0 {
			st, ok := streams[stream]
			if !ok {
				if st, err = r.js.Stream(ctx, stream); err != nil {
					return nil, fmt.Errorf("consumer %s: stream %s: %w", name, stream, err)
				}
				streams[stream] = st
			}
			// The first message of the consumer's subject after the ack
			// floor is the oldest one not acked: every message up to the
			// floor is.
			for _, subject := range s.Subjects() {
				m, err := st.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(subject))
				switch {
				case err == nil:
					if b.OldestUnhandled.IsZero() || m.Time.Before(b.OldestUnhandled) {
						b.OldestUnhandled = m.Time
					}
				case !errors.Is(err, jetstream.ErrMsgNotFound):
					return nil, fmt.Errorf("consumer %s: oldest unacked message: %w", name, err)
				}
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Consumer < out[j].Consumer })
	return out, nil
}
