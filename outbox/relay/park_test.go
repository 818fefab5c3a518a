package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/testenv"
)

// An event the server will never take cannot hold up the ones after it: the
// relay parks it in outbox.parked, counts it, and goes on. Two ways to be
// refused: bigger than the connection's max_payload (an event written when
// the limit was higher; the relay checks before sending), and bigger than
// the stream's max_msg_size (the server refuses it).
func TestUnpublishableEventIsParkedNotWedging(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		name := map[bool]string{false: "messages", true: "atomic_batches"}[atomic]
		t.Run(name, func(t *testing.T) { unpublishableEventIsParked(t, atomic) })
	}
}

func unpublishableEventIsParked(t *testing.T, atomic bool) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	s, err := nt.JS.Stream(ctx, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 16 << 10
	if _, err := nt.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var want []string
	add := func(n int) {
		id, err := appendOne(ctx, db.Pool, "test.fine.v1", "k", testData{N: n})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	add(1)
	// Bigger than the server's max_payload (8 MiB): written straight into
	// the table, as Append refuses it today.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO outbox.events (txid, event_id, key, subject, payload)
		VALUES (pg_current_xact_id()::text::bigint, gen_random_uuid(), 'k', 'events.test.huge.v1', $1)`,
		[]byte(`{"data":"`+strings.Repeat("x", 9<<20)+`"}`)); err != nil {
		t.Fatal(err)
	}
	add(2)
	// Bigger than the stream takes.
	if _, err := appendOne(ctx, db.Pool, "test.medium.v1", "k", map[string]string{"note": strings.Repeat("y", 20<<10)}); err != nil {
		t.Fatal(err)
	}
	add(3)
	r, _ := startRelay(t, db.Pool, nt.JS, relay.Options{AtomicBatches: atomic, MaxBackoff: 200 * time.Millisecond})
	got := collect(t, nt.JS, outbox.PublicStream, len(want), 20*time.Second)
	if len(got) != len(want) {
		t.Fatalf("%d events in the stream, want %d: the relay is stuck on an unpublishable one", len(got), len(want))
	}
	for i, r := range got {
		if r.Event.ID != want[i] {
			t.Fatalf("stream position %d holds %s, want %s", i, r.Event.ID, want[i])
		}
	}
	var parked []string
	rows, err := db.Pool.Query(ctx, `SELECT subject FROM outbox.parked ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		parked = append(parked, s)
	}
	if strings.Join(parked, ",") != "events.test.huge.v1,events.test.medium.v1" {
		t.Fatalf("parked: %v, want the huge and the medium event", parked)
	}
	m, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.Parked != 2 || m.Backlog != 0 {
		t.Fatalf("metrics: parked %d, backlog %d; want 2 and 0", m.Parked, m.Backlog)
	}
}
