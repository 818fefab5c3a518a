package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/errs"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An event bigger than the NATS server accepts would wedge the relay: Append
// refuses it, with an error the HTTP layer answers 422, so the request's
// transaction rolls back and nothing of it is written.
func TestAppendRefusesAnEventTheServerWouldNotTake(t *testing.T) {
	db := testenv.MustDB(t)
	ctx := context.Background()
	outbox.SetMaxPayload(64 << 10)
	t.Cleanup(func() { outbox.SetMaxPayload(outbox.DefaultMaxPayload) })
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE things (n int)`); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO things VALUES (1)`); err != nil {
			return err
		}
		_, err := outbox.Append(ctx, tx,
			outbox.Event{Type: "test.small.v1", Key: "k", Data: map[string]string{"note": "fine"}},
			outbox.Event{Type: "test.big.v1", Key: "k", Data: map[string]string{"note": strings.Repeat("x", 64<<10)}})
		return err
	})
	if !errors.Is(err, outbox.ErrEventTooLarge) {
		t.Fatalf("append of a 64 KiB event under a 64 KiB limit: %v, want ErrEventTooLarge", err)
	}
	if k := errs.KindOf(err); k != errs.Unprocessable {
		t.Fatalf("kind %v, want Unprocessable (422)", k)
	}
	if !strings.Contains(err.Error(), "test.big.v1") {
		t.Fatalf("the error does not name the event: %v", err)
	}
	var things, events int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM things), (SELECT count(*) FROM outbox.events)`).Scan(&things, &events); err != nil {
		t.Fatal(err)
	}
	if things != 0 || events != 0 {
		t.Fatalf("the refused transaction left %d rows and %d events", things, events)
	}
	// Just under the limit is fine.
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Append(ctx, tx, outbox.Event{Type: "test.big.v1", Key: "k", Data: map[string]string{"note": strings.Repeat("x", 60<<10)}})
		return err
	})
	if err != nil {
		t.Fatalf("a 60 KiB event under a 64 KiB limit: %v", err)
	}
}

// An event id is used once: a caller-supplied id already waiting in the
// outbox is refused.
func TestAppendRefusesAReusedEventID(t *testing.T) {
	db := testenv.MustDB(t)
	ctx := context.Background()
	id, err := outbox.NewID()
	if err != nil {
		t.Fatal(err)
	}
	appendID := func() error {
		return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			_, err := outbox.Append(ctx, tx, outbox.Event{Type: "test.once.v1", Key: "k", Data: 1, ID: id})
			return err
		})
	}
	if err := appendID(); err != nil {
		t.Fatal(err)
	}
	if err := appendID(); !errors.Is(err, outbox.ErrDuplicateEventID) {
		t.Fatalf("second append with the same id: %v, want ErrDuplicateEventID", err)
	}
}

// The event types these tests append; Append refuses undeclared ones.
var (
	_ = outbox.Declare[map[string]string](outbox.EventSpec{Type: "test.small.v1", Visibility: outbox.Public, Description: "A small test event."})
	_ = outbox.Declare[map[string]string](outbox.EventSpec{Type: "test.big.v1", Visibility: outbox.Public, Description: "A test event too large for NATS."})
	_ = outbox.Declare[int](outbox.EventSpec{Type: "test.once.v1", Visibility: outbox.Public, Description: "A test event with an id of its own."})
)
