package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// Request is a forget request as privacy.forget_requests records it.
type Request struct {
	Subject     string     `json:"subject"`
	Status      string     `json:"status"` // "forgetting" until Forgetter is done, then "forgotten"
	RequestedAt time.Time  `json:"requested_at"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
}

// Forget forgets a person: in one transaction it destroys their key (a
// tombstone if they had none yet, so that events of theirs that enter the
// lake later are stored without their personal data), records the request
// for the Forgetter and appends privacy.subject_forgotten.v1, on which
// modules erase their copies. Asking again changes nothing and appends
// nothing. Errors: the database's.
func Forget(ctx context.Context, db *pgxpool.Pool, subject string) (Request, error) {
	var req Request
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO privacy.forget_requests (subject) VALUES ($1) ON CONFLICT DO NOTHING`, subject)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, `INSERT INTO privacy.subject_keys (subject, key, forgotten_at) VALUES ($1, NULL, now())
				ON CONFLICT (subject) DO UPDATE SET key = NULL, forgotten_at = coalesce(privacy.subject_keys.forgotten_at, now())`, subject); err != nil {
				return err
			}
			if _, err := outbox.Append(ctx, tx, EventSubjectForgotten.New(subject, SubjectForgotten{
				SubjectID: subject, ForgottenAt: time.Now().UTC().Truncate(time.Microsecond),
			})); err != nil {
				return err
			}
		}
		req, err = readRequest(ctx, tx, subject)
		return err
	})
	if err != nil {
		return req, fmt.Errorf("privacy: forget %s: %w", subject, err)
	}
	return req, nil
}

func readRequest(ctx context.Context, db Querier, subject string) (Request, error) {
	rows, err := db.Query(ctx, `SELECT subject, requested_at, done_at FROM privacy.forget_requests WHERE subject = $1`, subject)
	if err != nil {
		return Request{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (Request, error) {
		var r Request
		err := row.Scan(&r.Subject, &r.RequestedAt, &r.DoneAt)
		return r, err
	})
	r.Status = "forgetting"
	if r.DoneAt != nil {
		r.Status = "forgotten"
	}
	return r, err
}

// StreamEraser removes one message from a stream, overwriting its data;
// a message that is not there (removed already, or expired) is no error.
// outbox/lake/streamseq implements it over JetStream.
type StreamEraser interface {
	Erase(ctx context.Context, stream string, seq uint64) error
}

// Forgetter finishes forget requests: it removes what is left of the
// person in clear outside the modules, on one replica (the holder of the
// lease privacy:forget), every second while requests are pending:
//   - their personal fields in outbox rows not yet moved into the lake (and
//     in parked ones) are set to null: a row not yet published goes out
//     without them, one published already enters the lake without them;
//   - their messages in the streams, found through the lake
//     (privacy.lake_events), are erased;
//   - their personal fields in dead letters are set to null, and what dry
//     runs recorded of their events is deleted.
//
// A request is done once no outbox row holds their data any more (every
// such row has been moved into the lake, so its message was found and
// erased).
type Forgetter struct {
	db     *pgxpool.Pool
	eraser StreamEraser
	log    *slog.Logger
	wake   chan struct{}
}

// NewForgetter returns a forgetter over db, erasing stream messages with e.
func NewForgetter(db *pgxpool.Pool, e StreamEraser, log *slog.Logger) *Forgetter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forgetter{db: db, eraser: e, log: log.With("component", "privacy"), wake: make(chan struct{}, 1)}
}

// Wake makes the holder look at the requests now (a Forget on this replica).
func (f *Forgetter) Wake() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run campaigns for the lease privacy:forget on leases and, while it holds
// it, works off pending requests until ctx ends.
func (f *Forgetter) Run(ctx context.Context, leases *pgxpool.Pool, holder string) error {
	l := lease.New(leases, "privacy:forget", lease.Options{Holder: holder, Logger: f.log})
	return l.Run(ctx, func(ctx context.Context, t *lease.Term) error {
		for {
			if err := f.Pass(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("forget pass failed; trying again", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-f.wake:
			case <-time.After(time.Second):
			}
		}
	})
}

// Pass works once on every pending request. Errors: the database's, a
// stream's.
func (f *Forgetter) Pass(ctx context.Context) error {
	rows, err := f.db.Query(ctx, `SELECT subject FROM privacy.forget_requests WHERE done_at IS NULL ORDER BY requested_at LIMIT 100`)
	if err != nil {
		return fmt.Errorf("privacy: pending requests: %w", err)
	}
	subjects, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("privacy: pending requests: %w", err)
	}
	var errs []error
	for _, s := range subjects {
		if err := f.forget(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("subject %s: %w", s, err))
			_, _ = f.db.Exec(ctx, `UPDATE privacy.forget_requests SET passes = passes + 1, last_error = $2 WHERE subject = $1`, s, err.Error())
		}
	}
	return errors.Join(errs...)
}

// forget is one pass over one person.
func (f *Forgetter) forget(ctx context.Context, subject string) error {
	types, subjects := personalTypes()
	left, err := f.scrubRows(ctx, "outbox.events", subject, subjects)
	if err != nil {
		return err
	}
	if _, err := f.scrubRows(ctx, "outbox.parked", subject, subjects); err != nil {
		return err
	}
	if err := f.scrubDeadLetters(ctx, subject, types); err != nil {
		return err
	}
	erased, err := f.eraseMessages(ctx, subject)
	if err != nil {
		return err
	}
	if _, err := f.db.Exec(ctx, `DELETE FROM replay.effects WHERE event_id IN (
		SELECT e.id FROM privacy.lake_events p JOIN lake.events e ON (e.position, e.recorded_at) = (p.position, p.recorded_at)
		WHERE p.subject = $1)`, subject); err != nil {
		return fmt.Errorf("privacy: dry-run records: %w", err)
	}
	done := ""
	if left == 0 {
		done = ", done_at = now()"
	}
	if _, err := f.db.Exec(ctx, `UPDATE privacy.forget_requests SET passes = passes + 1, removed = removed + $2, last_error = NULL`+done+`
		WHERE subject = $1`, subject, erased); err != nil {
		return fmt.Errorf("privacy: record the pass: %w", err)
	}
	if left == 0 {
		f.log.Info("subject forgotten: their data is gone from the outbox, the streams and the dead letters", "subject", subject)
	}
	return nil
}

// personalTypes returns the declared types with personal fields, and their
// NATS subjects.
func personalTypes() (types, subjects []string) {
	for _, d := range outbox.Catalog() {
		if len(outbox.PersonalFields(d.Type)) > 0 {
			types, subjects = append(types, d.Type), append(subjects, d.Subject())
		}
	}
	return types, subjects
}

// scrubRows sets the person's personal fields to null in table's rows
// (outbox.events or outbox.parked) and returns how many rows of theirs are
// still in the table.
func (f *Forgetter) scrubRows(ctx context.Context, table, subject string, natsSubjects []string) (int, error) {
	rows, err := f.db.Query(ctx, `SELECT event_id::text, payload FROM `+table+` WHERE subject = ANY($1)`, natsSubjects)
	if err != nil {
		return 0, fmt.Errorf("privacy: read %s: %w", table, err)
	}
	type row struct {
		id      string
		payload []byte
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.payload)
	})
	if err != nil {
		return 0, fmt.Errorf("privacy: read %s: %w", table, err)
	}
	left := 0
	for _, x := range all {
		out, mine, changed := scrubEvent(x.payload, subject)
		if !mine {
			continue
		}
		left++
		if !changed {
			continue
		}
		if _, err := f.db.Exec(ctx, `UPDATE `+table+` SET payload = $2 WHERE event_id = $1`, x.id, out); err != nil {
			return 0, fmt.Errorf("privacy: scrub %s: %w", table, err)
		}
	}
	return left, nil
}

// scrubEvent sets the person's personal fields of a CloudEvents document
// to null; mine says whether the event holds any of theirs.
func scrubEvent(raw []byte, subject string) (out []byte, mine, changed bool) {
	var env map[string]json.RawMessage
	if json.Unmarshal(raw, &env) != nil {
		return raw, false, false
	}
	var typ, key string
	_ = json.Unmarshal(env["type"], &typ)
	_ = json.Unmarshal(env["subject"], &key)
	if !contains(Subjects(typ, key, env["data"]), subject) {
		return raw, false, false
	}
	data, changed := Scrub(typ, key, subject, env["data"])
	if !changed {
		return raw, true, false
	}
	env["data"] = data
	out, err := json.Marshal(env)
	if err != nil {
		return raw, true, false
	}
	return out, true, true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (f *Forgetter) scrubDeadLetters(ctx context.Context, subject string, types []string) error {
	rows, err := f.db.Query(ctx, `SELECT id::text, payload FROM inbox.dead_letters WHERE event_type = ANY($1)`, types)
	if err != nil {
		return fmt.Errorf("privacy: read dead letters: %w", err)
	}
	type row struct {
		id      string
		payload []byte
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.payload)
	})
	if err != nil {
		return fmt.Errorf("privacy: read dead letters: %w", err)
	}
	for _, x := range all {
		if out, _, changed := scrubEvent(x.payload, subject); changed {
			if _, err := f.db.Exec(ctx, `UPDATE inbox.dead_letters SET payload = $2 WHERE id = $1`, x.id, out); err != nil {
				return fmt.Errorf("privacy: scrub a dead letter: %w", err)
			}
		}
	}
	return nil
}

// eraseMessages erases the person's messages from the streams, as the
// lake knows them, and returns how many it asked to erase.
func (f *Forgetter) eraseMessages(ctx context.Context, subject string) (int64, error) {
	rows, err := f.db.Query(ctx, `SELECT e.stream, e.stream_seq FROM privacy.lake_events p
		JOIN lake.events e ON (e.position, e.recorded_at) = (p.position, p.recorded_at)
		WHERE p.subject = $1 AND e.stream_seq IS NOT NULL ORDER BY e.position`, subject)
	if err != nil {
		return 0, fmt.Errorf("privacy: the person's events in the lake: %w", err)
	}
	type msg struct {
		stream string
		seq    int64
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (msg, error) {
		var m msg
		return m, r.Scan(&m.stream, &m.seq)
	})
	if err != nil {
		return 0, fmt.Errorf("privacy: the person's events in the lake: %w", err)
	}
	for _, m := range msgs {
		if err := f.eraser.Erase(ctx, m.stream, uint64(m.seq)); err != nil {
			return 0, fmt.Errorf("privacy: erase %s #%d: %w", m.stream, m.seq, err)
		}
	}
	return int64(len(msgs)), nil
}
