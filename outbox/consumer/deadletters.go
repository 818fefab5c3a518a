package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// DeadLetter is an event a consumer gave up on. Event is the event as it
// was parked, with its secret fields redacted (redact.go: at rest they are
// sealed, and only a retry opens them).
type DeadLetter struct {
	ID        string          `json:"id"`
	Consumer  string          `json:"consumer"`
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	Subject   string          `json:"subject"`
	Key       string          `json:"key"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	FailedAt  time.Time       `json:"failed_at"`
	Event     json.RawMessage `json:"event"`
}

// Errors of the dead-letter operations.
var (
	ErrDeadLetterNotFound = errs.New(errs.NotFound, "not_found", "no such dead letter")
	ErrRetryFailed        = errs.New(errs.Conflict, "retry_failed", "the handler failed again; the dead letter is kept")
)

// park writes the dead letter, fenced by term's token like the inbox
// record (errFenced once the term is over).
func (r *Runtime) park(ctx context.Context, consumer string, m jetstream.Msg, ev outbox.CloudEvent, attempts int, cause error, term *lease.Term) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	eventID := ev.ID
	if _, perr := uuid.Parse(eventID); perr != nil {
		eventID = uuid.NewSHA1(uuid.NameSpaceOID, m.Data()).String()
	}
	tag, err := r.db.Exec(ctx, `INSERT INTO inbox.dead_letters (id, consumer, event_id, event_type, subject, event_key, payload, attempts, last_error)
		SELECT $1::uuid, $2::text, $3::uuid, $4::text, $5::text, $6::text, $7::bytea, $8::int, $9::text
		 WHERE EXISTS (SELECT 1 FROM outbox.leases WHERE name = $10 AND token = $11)
		ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = inbox.dead_letters.attempts + EXCLUDED.attempts,
			last_error = EXCLUDED.last_error, failed_at = now()`,
		id, consumer, eventID, ev.Type, m.Subject(), ev.Subject, r.parkedPayload(m.Data()), attempts, cause.Error(), term.Name, term.Token)
	if err != nil {
		return fmt.Errorf("consumer: park dead letter: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errFenced
	}
	return nil
}

// DeadLetters lists parked events, oldest first, optionally of one consumer.
func (r *Runtime) DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error) {
	rows, err := r.pool.Query(ctx, `SELECT id::text, consumer, event_id::text, event_type, subject, event_key, attempts, last_error, failed_at, payload
		FROM inbox.dead_letters WHERE $1 = '' OR consumer = $1 ORDER BY failed_at, id LIMIT $2`, consumer, limit)
	if err != nil {
		return nil, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		var payload []byte
		err := row.Scan(&d.ID, &d.Consumer, &d.EventID, &d.EventType, &d.Subject, &d.Key, &d.Attempts, &d.LastError, &d.FailedAt, &payload)
		payload = shownPayload(payload)
		if json.Valid(payload) {
			d.Event = payload
		} else {
			d.Event, _ = json.Marshal(string(payload))
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: list dead letters: %w", err)
	}
	return out, nil
}

// Retry delivers a dead letter again to its one consumer, now, in this
// process. On success it is removed (in the handler's transaction); on
// failure it is kept with one more attempt. Errors: ErrDeadLetterNotFound,
// ErrRetryFailed.
func (r *Runtime) Retry(ctx context.Context, id string) error {
	var d DeadLetter
	var payload []byte
	err := r.pool.QueryRow(ctx, `SELECT consumer, subject, attempts, payload FROM inbox.dead_letters WHERE id = $1`, id).
		Scan(&d.Consumer, &d.Subject, &d.Attempts, &payload)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrDeadLetterNotFound
	}
	if err != nil {
		return fmt.Errorf("consumer: read dead letter: %w", err)
	}
	s, err := r.subscription(d.Consumer)
	if err != nil {
		return err
	}
	payload = r.unsealForRetry(id, payload)
	var ev outbox.CloudEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ErrRetryFailed.WithMessage("the dead letter is not a CloudEvents document and cannot be handled").Wrap(err)
	}
	if err := outbox.UpcastEvent(&ev, s.EventType); err != nil {
		return ErrRetryFailed.WithMessage("the dead letter cannot be upcast to the version its handler reads: " + err.Error()).Wrap(err)
	}
	herr := r.handleOnce(ctx, s, outbox.Delivery{Event: ev, Subject: d.Subject, Attempt: d.Attempts + 1}, nil, nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM inbox.dead_letters WHERE id = $1`, id)
		return err
	})
	if herr == nil {
		r.log.Info("dead letter redelivered", "consumer", d.Consumer, "event_id", ev.ID)
		return nil
	}
	if _, err := r.db.Exec(ctx, `UPDATE inbox.dead_letters SET attempts = attempts + 1, last_error = $2, failed_at = now() WHERE id = $1`, id, herr.Error()); err != nil {
		return fmt.Errorf("consumer: update dead letter: %w", err)
	}
	return ErrRetryFailed.WithMessage("the handler failed again; the dead letter is kept: " + herr.Error()).Wrap(herr)
}

// Discard removes a dead letter for good. Errors: ErrDeadLetterNotFound.
func (r *Runtime) Discard(ctx context.Context, id string) error {
	tag, err := r.pool.Exec(ctx, `DELETE FROM inbox.dead_letters WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("consumer: discard dead letter: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeadLetterNotFound
	}
	return nil
}

// cleanInbox forgets handled event ids older than the retention.
func (r *Runtime) cleanInbox(ctx context.Context, consumer string) {
	tag, err := r.db.Exec(ctx, `DELETE FROM inbox.processed WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2)`,
		consumer, r.opt.InboxRetention.Seconds())
	if err != nil {
		r.log.Warn("inbox cleanup failed", "consumer", consumer, "err", err)
		return
	}
	if n := tag.RowsAffected(); n > 0 {
		r.log.Info("inbox cleaned", "consumer", consumer, "deleted", n)
	}
}
