package lake_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/testenv"
)

// A move whose fence is false moves nothing; rows without acks get their
// stream sequences looked up in the streams; moving a range again moves
// nothing twice.
func TestMoveIsFencedAndLooksUpSequences(t *testing.T) {
	// Published rows stay in the outbox: the relay never hands them over.
	env := testenv.StartApp(t, testenv.AppOptions{Config: func(c *config.Config) { c.AdminToken = adminToken }})
	a := &lakeApp{App: env, t: t}
	for i := range 3 {
		a.signUpAndActivate(i)
	}
	a.Drain()
	ctx := context.Background()
	var to lake.Cursor
	if err := a.DB.Pool.QueryRow(ctx, `SELECT txid, seq FROM outbox.events ORDER BY txid DESC, seq DESC LIMIT 1`).Scan(&to.TxID, &to.Seq); err != nil {
		t.Fatal(err)
	}
	all := lake.Range{To: to}

	fenced := all
	fenced.Fence = lake.Fence{Cond: func(p string) string { return p + ` = 0` }, Token: 7}
	if _, err := a.Mover().MoveNow(ctx, fenced); !errors.Is(err, lake.ErrFenced) {
		t.Fatalf("fenced move: %v, want ErrFenced", err)
	}
	if n := a.Count(`SELECT count(*) FROM lake.events`); n != 0 {
		t.Fatalf("a fenced move moved %d events", n)
	}

	n, err := a.Mover().MoveNow(ctx, all)
	if err != nil || n != 12 {
		t.Fatalf("move without acks: %d, %v; want 12", n, err)
	}
	for _, stream := range []string{outbox.PublicStream, outbox.InternalStream} {
		for seq, m := range a.Stream(stream) {
			var got int64
			if err := a.DB.Pool.QueryRow(ctx, `SELECT stream_seq FROM lake.events WHERE id = $1 AND stream = $2`, m.ID, stream).Scan(&got); err != nil || got != int64(seq+1) {
				t.Errorf("%s seq %d: the lake has %d (%v)", stream, seq+1, got, err)
			}
		}
	}
	if n, err := a.Mover().MoveNow(ctx, all); err != nil || n != 0 {
		t.Fatalf("moving the same range again: %d, %v", n, err)
	}
	if n := a.Count(`SELECT count(*) FROM lake.events`); n != 12 {
		t.Fatalf("%d events in the lake, want 12", n)
	}
}
