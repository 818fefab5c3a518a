package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/lease"
)

// msg is the part of a JetStream message parking reads.
type msg struct {
	jetstream.Msg
	data []byte
}

func (m msg) Data() []byte    { return m.data }
func (m msg) Subject() string { return "events.test.happened.v1" }

// The inbox insert and the dead-letter write of a term whose token is no
// longer the lease's commit nothing, whatever the holder's clock says:
// this is what stops a holder frozen past its term (SIGSTOP) that wakes up
// before it notices. The current token's writes go through.
func TestWritesAreFencedByTheLeaseToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO outbox.leases (name, holder, token, acquired_at, renewed_at, expires_at)
		VALUES ('consumer:test_fenced', 'b', 2, now(), now(), now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	old := &lease.Term{Name: "consumer:test_fenced", Holder: "a", Token: 1}
	cur := &lease.Term{Name: "consumer:test_fenced", Holder: "b", Token: 2}
	write := func(term *lease.Term) (string, error) {
		id := uuid.NewString()
		return id, pgx.BeginFunc(ctx, e.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO effects (consumer, event_id, key, n) VALUES ('test_fenced', $1, 'k', 1)`, id); err != nil {
				return err
			}
			return consumer.Record(ctx, tx, "test_fenced", id, term)
		})
	}
	if _, err := write(old); !errors.Is(err, consumer.ErrFenced) {
		t.Fatalf("old term's write: %v, want ErrFenced", err)
	}
	if n := e.count(t, `SELECT count(*) FROM effects`) + e.count(t, `SELECT count(*) FROM inbox.processed`); n != 0 {
		t.Fatalf("the old term committed %d rows", n)
	}
	if _, err := write(cur); err != nil {
		t.Fatalf("current term's write: %v", err)
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.processed`); n != 1 {
		t.Fatalf("%d inbox rows after the current term's write, want 1", n)
	}

	rt := consumer.New(e.db.Pool, e.nt.JS, nil, consumer.Options{Logger: slog.New(slog.DiscardHandler)})
	ev := outbox.CloudEvent{ID: uuid.NewString(), Type: "test.happened.v1", Subject: "k"}
	m := msg{data: []byte(`{"id":"` + ev.ID + `"}`)}
	if err := rt.Park(ctx, "test_fenced", m, ev, old); !errors.Is(err, consumer.ErrFenced) {
		t.Fatalf("old term's dead letter: %v, want ErrFenced", err)
	}
	if err := rt.Park(ctx, "test_fenced", m, ev, cur); err != nil {
		t.Fatalf("current term's dead letter: %v", err)
	}
	if n := e.count(t, `SELECT count(*) FROM inbox.dead_letters`); n != 1 {
		t.Fatalf("%d dead letters, want 1 (the current term's)", n)
	}
}
