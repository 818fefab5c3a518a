package streamseq_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox/lake/streamseq"
	"github.com/cairn-dev/cairn/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Forgetting a person passes over their messages again while their last
// events are still on the way (an earlier pass erased the first ones):
// erasing a message already erased is no error, and the others stay.
func TestEraseTwiceIsNoError(t *testing.T) {
	ctx := context.Background()
	n := testenv.MustNATS(t)
	var seqs []uint64
	for _, body := range []string{"erase", "keep", "erase too", "keep too"} {
		ack, err := n.JS.Publish(ctx, "events.test.thing.v1", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	// The server says "not found" differently for the stream's first
	// message (below its first sequence once erased) and a middle one.
	e := streamseq.Eraser{JS: n.JS}
	for i := 0; i < 2; i++ {
		for _, seq := range []uint64{seqs[0], seqs[2]} {
			if err := e.Erase(ctx, "EVENTS", seq); err != nil {
				t.Fatalf("erase #%d, time %d: %v", seq, i+1, err)
			}
		}
	}
	s, err := n.JS.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{seqs[0], seqs[2]} {
		if _, err := s.GetMsg(ctx, seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatalf("the erased message #%d: %v, want not found", seq, err)
		}
	}
	for _, seq := range []uint64{seqs[1], seqs[3]} {
		if _, err := s.GetMsg(ctx, seq); err != nil {
			t.Fatalf("message #%d, not erased: %v", seq, err)
		}
	}
	if err := e.Erase(ctx, "NO_SUCH_STREAM", 1); err == nil {
		t.Fatal("erasing from a stream that does not exist: no error")
	}
}
