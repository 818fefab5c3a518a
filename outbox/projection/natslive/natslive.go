// Package natslive feeds projections from JetStream: an ordered consumer
// (ephemeral, no acks, recreated by the client at the right sequence after
// a gap or a reconnect) per version being fed, from the sequence the
// version's checkpoint says. The checkpoint lives in PostgreSQL with the
// projection's tables, so nothing is kept at the server.
package natslive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox/projection"
)

// Stream implements projection.Stream on a JetStream context.
type Stream struct {
	JS jetstream.JetStream
}

// Follow starts an ordered consumer of subjects on stream from sequence
// from.
func (s Stream) Follow(ctx context.Context, stream string, subjects []string, from uint64) (projection.Feed, error) {
	cons, err := s.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    max(from, 1),
		// The server removes it this long after its process stopped
		// pulling (killed): the default, 5 minutes, left consumers with
		// pending messages that monitoring reads as a stuck consumer.
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("natslive: ordered consumer on %s from %d: %w", stream, from, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, fmt.Errorf("natslive: ordered consumer on %s from %d: %w", stream, from, err)
	}
	return &feed{it: it}, nil
}

type feed struct {
	it jetstream.MessagesContext
}

// wire is what a projection reads of a CloudEvent; time stays the text it
// was written as.
type wire struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    string          `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// Next waits up to wait for a message, then takes those already buffered.
func (f *feed) Next(ctx context.Context, maxEvents int, wait time.Duration) ([]projection.Event, uint64, error) {
	var (
		out     []projection.Event
		pending uint64
	)
	for len(out) < maxEvents {
		d := wait
		if len(out) > 0 {
			d = time.Millisecond // only what is there at once
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			d = max(time.Until(dl), time.Millisecond)
		}
		m, err := f.it.Next(jetstream.NextMaxWait(d))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return out, pending, fmt.Errorf("natslive: next message: %w", err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return out, pending, fmt.Errorf("natslive: message metadata: %w", err)
		}
		var w wire
		if err := json.Unmarshal(m.Data(), &w); err != nil || w.ID == "" {
			// Not a CloudEvent: nothing Cairn published. Skip it, but
			// keep its sequence so the checkpoint moves past it.
			out = append(out, projection.Event{Seq: meta.Sequence.Stream, Type: "", Subject: m.Subject()})
			pending = meta.NumPending
			continue
		}
		out = append(out, projection.Event{Seq: meta.Sequence.Stream, ID: w.ID, Type: w.Type, Subject: w.Subject, Time: w.Time, Data: w.Data})
		pending = meta.NumPending
		if ctx.Err() != nil {
			break
		}
	}
	return out, pending, nil
}

func (f *feed) Stop() { f.it.Stop() }
