package lookup

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
)

// Lake is the Finder over the lake: every event ever published, found by
// its indexes, and the outbox table for the events committed but not yet
// moved into the lake (unpublished, or published in the last seconds).
// The lake holds no secret field; events still in the outbox are shown
// whole, as Recent shows them.
type Lake struct {
	Lake *lake.Lake
	Pool *pgxpool.Pool // where the outbox table is
}

// Find looks in the lake, then in the outbox table; an event in both is
// reported once, from the lake. Errors: ErrEmptyQuery, or the database's,
// wrapped.
func (l Lake) Find(ctx context.Context, q Query, limit int) ([]Event, error) {
	match, col, arg := q.matcher()
	if match == nil {
		return nil, ErrEmptyQuery
	}
	by := map[string]string{"event_id::text": lake.ByID, "key": lake.ByKey}[col]
	switch {
	case q.CorrelationID != "":
		by = lake.ByCorrelation
	case q.CausationID != "":
		by = lake.ByCausation
	}
	items, err := l.Lake.Find(ctx, by, arg, limit)
	if err != nil {
		return nil, err
	}
	byID := map[string]Event{}
	for _, it := range items {
		byID[it.Event.ID] = fromLake(it)
	}
	if err := inOutbox(ctx, l.Pool, col, arg, match, byID); err != nil {
		return nil, err
	}
	return sorted(byID, limit), nil
}

// Scope says what Find reaches, for the console.
func (Lake) Scope() string {
	return "the lake (every event published, for ever, without its secret fields) and the outbox (events not moved into the lake yet)"
}

// fromLake is an event of the lake as the console shows it.
func fromLake(it lake.Item) Event {
	e := it.Event
	v := outbox.Public
	if e.Visibility == "internal" {
		v = outbox.Internal
	}
	out := Event{
		CloudEvent: outbox.CloudEvent{SpecVersion: e.SpecVersion, ID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject,
			Time: e.Time, DataContentType: e.DataContentType, Data: json.RawMessage(e.Data), CorrelationID: e.CorrelationID,
			CausationID: e.CausationID, TraceParent: e.TraceParent},
		NATSSubject: outbox.Subject(e.Type, v),
		Where:       "lake (" + it.Stream + ")",
	}
	if it.StreamSeq != nil {
		out.Sequence = uint64(*it.StreamSeq)
	}
	return out
}
