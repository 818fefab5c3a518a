package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// Range selects the lake's events a replay reads; the zero Range is the
// whole history. Positions are inclusive; times compare the events'
// CloudEvents time, From <= time < To.
type Range struct {
	FromPosition, ToPosition int64
	FromTime, ToTime         time.Time
}

// Event is one event of the lake as a handler gets it: opened (its personal
// fields readable while the person's key exists), its secret fields
// outbox.Redacted (the lake never kept them) and upcast to the version the
// handler reads.
type Event struct {
	Position int64
	Stream   string
	// StreamSeq is where the event is in Stream; 0 when the lake does not
	// know.
	StreamSeq uint64
	// StoredType is the type the event was written as (Event.Type is the
	// version the handler reads).
	StoredType string
	outbox.CloudEvent
}

// pageSize is how many events one read of the lake returns; replays hand
// them to the handler in batches of that size.
const pageSize = 2000

// head is the lake's head: the last position given, and each stream's
// highest sequence moved.
type head struct {
	Position int64
	Streams  map[string]uint64
}

func readHead(ctx context.Context, db *pgxpool.Pool) (head, error) {
	var h head
	err := db.QueryRow(ctx, `SELECT position, streams FROM lake.head`).Scan(&h.Position, &h.Streams)
	if err != nil {
		return h, fmt.Errorf("replay: read the lake's head: %w", err)
	}
	return h, nil
}

const readSQL = `SELECT position, stream, coalesce(stream_seq, 0), id::text, source, type, subject, time,
	correlation_id, coalesce(causation_id, ''), coalesce(traceparent, ''), data
FROM lake.events
WHERE type = ANY($1) AND position > $2 AND position <= $3
  AND ($4::timestamptz IS NULL OR time >= $4) AND ($5::timestamptz IS NULL OR time < $5)
ORDER BY position LIMIT $6`

// reader reads the lake's events of a subscription in position order, a
// page ahead of its caller.
type reader struct {
	db     *pgxpool.Pool
	sub    outbox.Subscription
	rng    Range
	secret map[string][]outbox.Field // stored type -> its secret string fields
}

func newReader(db *pgxpool.Pool, sub outbox.Subscription, rng Range) *reader {
	r := &reader{db: db, sub: sub, rng: rng, secret: map[string][]outbox.Field{}}
	for _, t := range sub.EventTypes() {
		d, _ := outbox.Lookup(t)
		for _, f := range d.Fields {
			if f.Secret && f.Kind == reflect.String {
				r.secret[t] = append(r.secret[t], f)
			}
		}
	}
	return r
}

// pages calls each with the events after position after up to upTo (and
// within the range), a page at a time, reading the next page while each
// runs. It returns the last position read.
func (r *reader) pages(ctx context.Context, after, upTo int64, each func([]Event) error) (int64, error) {
	if r.rng.ToPosition > 0 {
		upTo = min(upTo, r.rng.ToPosition)
	}
	if r.rng.FromPosition > 0 {
		after = max(after, r.rng.FromPosition-1)
	}
	type page struct {
		evs []Event
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan page, 1)
	go func() {
		defer close(ch)
		for at := after; at < upTo; {
			evs, err := r.page(ctx, at, upTo)
			select {
			case ch <- page{evs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(evs) < pageSize {
				return
			}
			at = evs[len(evs)-1].Position
		}
	}()
	last := after
	for p := range ch {
		if p.err != nil {
			return last, p.err
		}
		if len(p.evs) == 0 {
			break
		}
		if err := each(p.evs); err != nil {
			return last, err
		}
		last = p.evs[len(p.evs)-1].Position
	}
	if ctx.Err() != nil {
		return last, ctx.Err()
	}
	return last, nil
}

// page reads one page and makes its events what a handler gets.
func (r *reader) page(ctx context.Context, after, upTo int64) ([]Event, error) {
	var from, to any
	if !r.rng.FromTime.IsZero() {
		from = r.rng.FromTime
	}
	if !r.rng.ToTime.IsZero() {
		to = r.rng.ToTime
	}
	rows, err := r.db.Query(ctx, readSQL, r.sub.EventTypes(), after, upTo, from, to, pageSize)
	if err != nil {
		return nil, fmt.Errorf("replay: read the lake: %w", err)
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		c := &e.CloudEvent
		err := row.Scan(&e.Position, &e.Stream, &e.StreamSeq, &c.ID, &c.Source, &c.Type, &c.Subject, &c.Time,
			&c.CorrelationID, &c.CausationID, &c.TraceParent, &c.Data)
		c.SpecVersion, c.DataContentType, c.Time = "1.0", "application/json", c.Time.UTC()
		e.StoredType = c.Type
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("replay: read the lake: %w", err)
	}
	if err := lake.OpenEvents(ctx, r.db, len(evs), func(i int) (string, string, string, *json.RawMessage) {
		c := &evs[i].CloudEvent
		return c.Type, c.ID, c.Subject, &c.Data
	}); err != nil {
		return nil, err
	}
	for i := range evs {
		c := &evs[i].CloudEvent
		if fs := r.secret[c.Type]; len(fs) > 0 {
			c.Data = redactedSecrets(c.Data, fs)
		}
		if err := outbox.UpcastEvent(c, r.sub.EventType); err != nil {
			// Left as stored: the handler's decode fails, and the event
			// is counted as failed.
			c.Data = json.RawMessage(`{"cairn_upcast_error":` + quote(err.Error()) + `}`)
		}
	}
	return evs, nil
}

// redactedSecrets puts outbox.Redacted where the lake removed a secret
// string field, as a retried dead letter has it: handlers already treat it
// as gone.
func redactedSecrets(data json.RawMessage, fields []outbox.Field) json.RawMessage {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&obj) != nil || obj == nil {
		return data
	}
	changed := false
	for _, f := range fields {
		parts := strings.Split(f.Path, ".")
		m := obj
		for _, p := range parts[:len(parts)-1] {
			inner, ok := m[p].(map[string]any)
			if !ok {
				m = nil
				break
			}
			m = inner
		}
		if m == nil {
			continue
		}
		if _, present := m[parts[len(parts)-1]]; !present {
			m[parts[len(parts)-1]], changed = outbox.Redacted, true
		}
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return out
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
