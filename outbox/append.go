package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Appended is what Append assigned to one event.
type Appended struct {
	ID   string
	Time time.Time
}

// appendSQL inserts the events in argument order. The txid column is the
// writer's transaction id, raised to the largest txid already committed for
// the same key: the relay publishes in txid order, and a transaction that got
// its id early but committed after another writer of the same key (say it
// waited on that writer's row lock) must still come after it. It is also
// raised above the relay's cursor, which changes nothing while the cursor
// and the writer share one transaction id space (the cursor is always below
// every running transaction), and keeps a new event from sorting below the
// cursor, unread for ever, after a logical restore into a cluster whose ids
// are lower (see relay/xidspace.go).
const appendSQL = `
INSERT INTO outbox.events (txid, event_id, key, subject, payload)
SELECT greatest(pg_current_xact_id()::text::bigint,
                (SELECT max(o.txid) FROM outbox.events o WHERE o.key = e.key),
                (SELECT c.txid + 1 FROM outbox.relay_cursor c)),
       e.event_id, e.key, e.subject, e.payload
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS e(event_id, key, subject, payload, n)
ORDER BY e.n`

// appendOneSQL is appendSQL for the common single event, without the arrays:
// encoding four one-element arrays was a few percent of a deposit's CPU.
const appendOneSQL = `
INSERT INTO outbox.events (txid, event_id, key, subject, payload)
VALUES (greatest(pg_current_xact_id()::text::bigint,
                 (SELECT max(o.txid) FROM outbox.events o WHERE o.key = $2),
                 (SELECT c.txid + 1 FROM outbox.relay_cursor c)),
        $1, $2, $3, $4)`

// wakeSQL notifies the relay if it sleeps. It must be a statement of its
// own after the insert: its snapshot is then taken after this transaction
// got its id, so a relay that set idle later still waits for it (see
// relay.lead). It replaces a statement trigger that cost 13-27 % of a
// single-event write.
const wakeSQL = `SELECT pg_notify('cairn_outbox', '') FROM outbox.relay WHERE idle`

// NewID returns a new event id (a UUIDv7, so ids sort by time).
func NewID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("outbox: new event id: %w", err)
	}
	return id.String(), nil
}

// Append records events in tx; they are published after tx commits and never
// if it rolls back. It takes a pgx.Tx, not a pool, so it cannot be called
// outside a transaction. Events of one key are published in the order their
// transactions committed, provided the writers of that key are serialised
// (for example by a row lock on the aggregate), as writers of one aggregate
// must be anyway. It returns the id and time given to each event, in order.
// Errors: an invalid event (a type not in the catalog, an empty key, data
// not of the declared payload type or that does not marshal),
// ErrEventTooLarge, ErrDuplicateEventID, or the database's error, wrapped.
func Append(ctx context.Context, tx pgx.Tx, events ...Event) ([]Appended, error) {
	if len(events) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	out, err := Queue(ctx, b, events...)
	if err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id" {
			err = errors.Join(ErrDuplicateEventID, err)
		}
		return nil, fmt.Errorf("outbox: append %d event(s): %w", len(events), err)
	}
	return out, nil
}

// Queue is Append for a caller that pipelines its transaction: it encodes
// the events and queues their insert, and the relay's wake-up, on b, so they
// reach PostgreSQL in the same round trip as the caller's other statements
// (a write-heavy use case can then send BEGIN ... COMMIT in two round trips
// instead of four). The events are recorded only if b runs inside the
// transaction that makes the change they announce: sent on a pgx.Tx, or
// between a BEGIN and a COMMIT the caller queues itself. A statement that
// fails in b fails the batch, and the caller must roll back. Ordering per
// key is as for Append. A reused event id fails the batch with a unique
// violation on events_event_id. Errors: an invalid event or ErrEventTooLarge,
// as for Append; nothing is
// queued then.
func Queue(ctx context.Context, b *pgx.Batch, events ...Event) ([]Appended, error) {
	if len(events) == 0 {
		return nil, nil
	}
	md := MetadataFrom(ctx)
	now := time.Now().UTC()
	ids := make([]string, len(events))
	keys := make([]string, len(events))
	subjects := make([]string, len(events))
	payloads := make([][]byte, len(events))
	out := make([]Appended, len(events))
	for i, e := range events {
		d, err := e.declaration()
		if err != nil {
			return nil, err
		}
		data, err := marshalData(e)
		if err != nil {
			return nil, err
		}
		id := e.ID
		if id == "" {
			if id, err = NewID(); err != nil {
				return nil, err
			}
		} else if u, perr := uuid.Parse(id); perr != nil || u.Version() != 7 {
			return nil, fmt.Errorf("outbox: event %s: id %q is not a UUIDv7 from NewID", e.Type, id)
		}
		ce := CloudEvent{
			SpecVersion:     "1.0",
			ID:              id,
			Source:          Source(Module(e.Type)),
			Type:            e.Type,
			Subject:         e.Key,
			Time:            now,
			DataContentType: "application/json",
			DataSchema:      dataSchema(e.Type),
			Data:            data,
			CorrelationID:   md.CorrelationID,
			CausationID:     md.CausationID,
			TraceParent:     md.TraceParent,
		}
		if ce.CorrelationID == "" {
			ce.CorrelationID = ce.ID
		}
		if tp := createSpan(ctx, d.Subject(), ce.ID); tp != "" {
			ce.TraceParent = tp
		}
		payload, err := json.Marshal(ce)
		if err != nil {
			return nil, fmt.Errorf("outbox: encode %s: %w", e.Type, err)
		}
		if limit := maxEventBytes(); int64(len(payload)) > limit {
			return nil, fmt.Errorf("outbox: event %s is %d bytes encoded, more than the %d the NATS server accepts (max_payload less %d for headers): %w",
				e.Type, len(payload), limit, headerReserve, ErrEventTooLarge)
		}
		ids[i], keys[i], subjects[i], payloads[i] = ce.ID, e.Key, d.Subject(), payload
		out[i] = Appended{ID: ce.ID, Time: now}
	}
	if len(events) == 1 {
		b.Queue(appendOneSQL, ids[0], keys[0], subjects[0], payloads[0])
	} else {
		b.Queue(appendSQL, ids, keys, subjects, payloads)
	}
	b.Queue(wakeSQL)
	return out, nil
}
