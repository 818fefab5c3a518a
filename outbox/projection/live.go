package projection

import (
	"context"
	"encoding/json"
	"time"
)

// Event is one event as a projection is fed it: from the lake (Position
// set) or from the stream (Seq set).
type Event struct {
	Position int64  // lake position; 0 for an event read from the stream
	Seq      uint64 // stream sequence; 0 when unknown
	ID       string
	Type     string
	Subject  string
	// Time is the CloudEvent's time as it was written (RFC 3339, ns):
	// PostgreSQL parses it as the lake did, so both give the same instant.
	Time string
	Data json.RawMessage
}

// Stream is the stream after the lake: a projection's events from a stream
// sequence on. outbox/projection/natslive implements it on JetStream.
//
// The hand-over from the lake to the stream is this package's (see
// handoff.go): it reads the lake by position, then asks Stream for the
// stream from the first sequence the lake did not hold, and relies on the
// projection's idempotence to absorb whatever is delivered twice.
type Stream interface {
	// Follow returns the events of subjects on stream from sequence from
	// on, in stream order, until Stop.
	Follow(ctx context.Context, stream string, subjects []string, from uint64) (Feed, error)
}

// Feed is one following of a stream.
type Feed interface {
	// Next waits up to wait for a first event, then returns it with those
	// that are there at once, at most max in all, and how many of the
	// feed's events the stream holds after the last one returned (0:
	// caught up). No events and no error: nothing came within wait.
	Next(ctx context.Context, max int, wait time.Duration) (events []Event, pending uint64, err error)
	Stop()
}
