package lake

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/privacy"
)

// Personal fields (the event catalog's cairn:"personal") enter the lake
// sealed with their person's key (outbox/privacy): the mover seals them,
// and every query opens them while the key exists. Once the person is
// forgotten the key is gone and they read as null; the rows themselves
// never change.

// personalSubjects returns the NATS subjects of every declared type with
// personal fields: the move reads the payloads of those rows to seal them.
func personalSubjects() []string {
	var out []string
	for _, d := range outbox.Catalog() {
		for _, f := range d.Fields {
			if f.Personal {
				out = append(out, d.Subject())
				break
			}
		}
	}
	return out
}

// sealed is what the move writes instead of a row's data, and whose
// personal data it holds.
type sealed struct {
	ids, datas        []string // event id -> data with personal fields sealed
	subjects, subjIDs []string // (person, event id) pairs for privacy.lake_events
}

// sealRows seals the personal fields of the rows whose payloads the first
// round read, with keys made in the move's transaction (db) as needed.
func sealRows(ctx context.Context, db privacy.Batcher, rows []unacked) (sealed, error) {
	var out sealed
	type ev struct {
		ID, Type, Subject string
		Data              json.RawMessage
	}
	var evs []ev
	var all []string
	for _, r := range rows {
		if r.payload == nil {
			continue
		}
		var e ev
		if err := json.Unmarshal(r.payload, &e); err != nil || e.ID == "" {
			continue // not a CloudEvent: the move stores it as it stores any
		}
		subjects := privacy.Subjects(e.Type, e.Subject, e.Data)
		if len(subjects) == 0 {
			continue
		}
		for _, s := range subjects {
			out.subjects, out.subjIDs = append(out.subjects, s), append(out.subjIDs, e.ID)
		}
		all = append(all, subjects...)
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return out, nil
	}
	keys, err := privacy.EnsureKeys(ctx, db, all)
	if err != nil {
		return out, err
	}
	for _, e := range evs {
		data, changed, err := privacy.Seal(e.Type, e.ID, e.Subject, e.Data, keys)
		if err != nil {
			return out, fmt.Errorf("lake: %w", err)
		}
		if changed {
			out.ids, out.datas = append(out.ids, e.ID), append(out.datas, string(data))
		}
	}
	return out, nil
}

// openItems opens the sealed personal fields of items in place, with one
// read of the keys they need.
func (l *Lake) openItems(ctx context.Context, items []Item) error {
	return OpenEvents(ctx, l.pool, len(items), func(i int) (string, string, string, *json.RawMessage) {
		e := &items[i].Event
		return e.Type, e.ID, e.Subject, &e.Data
	})
}

// OpenEvents opens the sealed personal fields of n events in place: at(i)
// gives the i-th event's type, id, key and a pointer to its data. The keys
// are read in one query. Errors: the database's.
func OpenEvents(ctx context.Context, db privacy.Querier, n int, at func(i int) (typ, id, key string, data *json.RawMessage)) error {
	var subjects []string
	var idx []int
	for i := range n {
		typ, _, key, data := at(i)
		if s := privacy.Subjects(typ, key, *data); len(s) > 0 {
			subjects = append(subjects, s...)
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	keys, err := privacy.LoadKeys(ctx, db, subjects)
	if err != nil {
		return err
	}
	for _, i := range idx {
		typ, id, key, data := at(i)
		opened, changed, err := privacy.Open(typ, id, key, *data, keys)
		if err != nil {
			return fmt.Errorf("lake: %w", err)
		}
		if changed {
			*data = opened
		}
	}
	return nil
}
