// Package lookup finds events for the operator console: by id, key,
// correlation id or causation id (Finder), and as they are published (Tail).
// Lake finds them in the lake, which keeps every event published, and in
// the outbox table for those not moved into it yet. With the lake off
// (CAIRN_LAKE=off), what can be reached is the outbox table (events not yet
// published, or published in the last few seconds) and the newest messages
// of each stream: Recent looks there.
package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// Query selects events by exactly one of its fields.
type Query struct {
	ID            string
	Key           string
	CorrelationID string
	CausationID   string
}

// Event is an event found, and where.
type Event struct {
	outbox.CloudEvent
	NATSSubject string `json:"nats_subject"`
	// Where is "outbox" (committed, maybe not yet published) or the
	// stream it was read from, "EVENTS" or "INTERNAL".
	Where string `json:"where"`
	// Sequence is its stream sequence (0 when found in the outbox).
	Sequence uint64 `json:"sequence,omitempty"`
}

// Finder finds events.
type Finder interface {
	// Find returns the events q selects, oldest first, at most limit.
	Find(ctx context.Context, q Query, limit int) ([]Event, error)
	// Scope says what Find reaches, in a phrase for the console.
	Scope() string
}

// ErrEmptyQuery: a Query with no field set.
var ErrEmptyQuery = errors.New("lookup: give an event id, a key, a correlation id or a causation id")

// Recent is the Finder over what is reachable before the lake: the outbox
// table and the newest Depth messages of each stream.
type Recent struct {
	Pool  *pgxpool.Pool
	JS    jetstream.JetStream
	Depth int // messages read back per stream; default 10,000
}

// Scope says what Find reaches, for the console.
func (r Recent) Scope() string {
	return "the outbox and the newest messages of each stream (the lake is off: older events cannot be reached)"
}

// Find looks in the outbox table, then in both streams. An event found
// in both is reported once, from its stream. Errors: the database's or
// NATS's, wrapped.
func (r Recent) Find(ctx context.Context, q Query, limit int) ([]Event, error) {
	match, col, arg := q.matcher()
	if match == nil {
		return nil, ErrEmptyQuery
	}
	byID := map[string]Event{}
	for _, stream := range []string{outbox.PublicStream, outbox.InternalStream} {
		if err := r.scan(ctx, stream, match, byID); err != nil {
			return nil, err
		}
	}
	if err := inOutbox(ctx, r.Pool, col, arg, match, byID); err != nil {
		return nil, err
	}
	return sorted(byID, limit), nil
}

// inOutbox adds the events of the outbox table that match (narrowed by
// col = arg) to into, unless into has them already.
func inOutbox(ctx context.Context, pool *pgxpool.Pool, col, arg string, match func(outbox.CloudEvent) bool, into map[string]Event) error {
	rows, err := pool.Query(ctx, `SELECT subject, payload FROM outbox.events WHERE `+col+` = $1 ORDER BY txid, seq LIMIT 1000`, arg)
	if err != nil {
		return fmt.Errorf("lookup: outbox: %w", err)
	}
	var subject string
	var payload []byte
	if _, err := pgx.ForEachRow(rows, []any{&subject, &payload}, func() error {
		var ce outbox.CloudEvent
		if json.Unmarshal(payload, &ce) == nil && match(ce) {
			if _, ok := into[ce.ID]; !ok {
				into[ce.ID] = Event{CloudEvent: ce, NATSSubject: subject, Where: "outbox"}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("lookup: outbox: %w", err)
	}
	return nil
}

// sorted returns the events of byID oldest first, at most limit (0: all).
func sorted(byID map[string]Event, limit int) []Event {
	out := make([]Event, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// matcher returns the test of q, and the outbox column (or expression)
// and value that narrow the table read.
func (q Query) matcher() (func(outbox.CloudEvent) bool, string, string) {
	switch {
	case q.ID != "":
		return func(e outbox.CloudEvent) bool { return e.ID == q.ID }, "event_id::text", q.ID
	case q.Key != "":
		return func(e outbox.CloudEvent) bool { return e.Subject == q.Key }, "key", q.Key
	case q.CorrelationID != "":
		return func(e outbox.CloudEvent) bool { return e.CorrelationID == q.CorrelationID },
			"convert_from(payload, 'UTF8')::jsonb->>'correlationid'", q.CorrelationID
	case q.CausationID != "":
		return func(e outbox.CloudEvent) bool { return e.CausationID == q.CausationID },
			"convert_from(payload, 'UTF8')::jsonb->>'causationid'", q.CausationID
	}
	return nil, "", ""
}

// scan reads the newest Depth messages of a stream with an ordered
// consumer, keeping those that match.
func (r Recent) scan(ctx context.Context, stream string, match func(outbox.CloudEvent) bool, into map[string]Event) error {
	depth := r.Depth
	if depth <= 0 {
		depth = 10_000
	}
	s, err := r.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("lookup: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("lookup: stream %s: %w", stream, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	start := first
	if last >= uint64(depth) && last-uint64(depth)+1 > first {
		start = last - uint64(depth) + 1
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
		InactiveThreshold: 10 * time.Second}) // not 5 minutes after a killed process
	if err != nil {
		return fmt.Errorf("lookup: stream %s: %w", stream, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for seen := start; seen < last && time.Now().Before(deadline); {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("lookup: stream %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			seen = meta.Sequence.Stream
			var ce outbox.CloudEvent
			if json.Unmarshal(m.Data(), &ce) == nil && match(ce) {
				into[ce.ID] = Event{CloudEvent: ce, NATSSubject: m.Subject(), Where: stream, Sequence: seen}
			}
		}
		if n == 0 {
			break
		}
	}
	return nil
}
