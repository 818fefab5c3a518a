package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/testenv"
)

// The real binary is killed with SIGKILL while the lake is filling, NATS
// restarts, and a new process finishes the job while events keep coming:
// every event of the stream is in the lake exactly once, at its stream
// sequence, with gap-free positions. The killed process left rows it had
// published but not moved, whose acks died with it: the new one finds
// their sequences in the stream.
func TestLakeCompleteAfterKillAndNATSRestart(t *testing.T) {
	db := testenv.MustDB(t)
	nt := testenv.MustNATS(t)
	ctx := context.Background()
	const n = 30000
	ids := appendEvents(t, db.Pool, "it.drained.v1", n, 500)

	first := startCairn(t, externalEnv(db, nt))
	lakeRows := func() int {
		var c int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM lake.events`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitUntil(t, 60*time.Second, "the lake to be filling", func() bool { return lakeRows() > 0 })
	first.Kill9()
	inLake, published := lakeRows(), streamMsgs(t, nt.JS, outbox.PublicStream)
	t.Logf("killed with %d events published and %d in the lake", published, inLake)
	if inLake >= n {
		t.Fatal("the lake was full before the kill; the test proves nothing")
	}
	nt.Stop()
	nt.Restart(t)

	second := startCairn(t, externalEnv(db, nt))
	second.WaitLog("relay is leader", 30*time.Second)
	more := appendEvents(t, db.Pool, "it.after.v1", 2000, 50)
	ids = append(ids, more...)
	waitUntil(t, 90*time.Second, "every event published", func() bool {
		return streamMsgs(t, nt.JS, outbox.PublicStream) >= uint64(len(ids))
	})
	if left, err := waitLakeMoved(ctx, db.Pool, 60*time.Second); err != nil || left > 0 {
		t.Fatalf("%d rows never moved into the lake (%v)", left, err)
	}
	exactlyOnce(t, nt.JS, outbox.PublicStream, ids)
	msgs, err := readStream(ctx, nt.JS, outbox.PublicStream)
	if err != nil {
		t.Fatal(err)
	}
	f := &findings{}
	if err := checkLake(ctx, db.Pool, f, map[string][]streamMsg{outbox.PublicStream: msgs}); err != nil {
		t.Fatal(err)
	}
	if !f.empty() {
		t.Fatalf("the lake after the kill and the NATS restart:\n%s", f)
	}
	if got := lakeRows(); got != len(ids) {
		t.Fatalf("%d events in the lake, %d committed", got, len(ids))
	}
}
