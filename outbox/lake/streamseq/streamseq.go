// Package streamseq finds where JetStream stored events whose publish acks
// the relay no longer has (it restarted, or skipped them because an earlier
// leader had published them): the lake's Mover asks it before it moves such
// rows. It reads the stream's headers only, from a sequence on, with one
// ordered consumer, and stops as soon as it has found every id.
package streamseq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lookup implements lake.SeqLookup over a JetStream context.
type Lookup struct {
	JS jetstream.JetStream
	// Timeout bounds the wait for each message (default 10 s).
	Timeout time.Duration
}

// Seqs returns the stream sequence of each of ids that stream holds at or
// after sequence from; ids it does not hold are missing from the map.
// Errors: the stream cannot be read.
func (l Lookup) Seqs(ctx context.Context, stream string, from uint64, ids []string) (map[string]uint64, error) {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	found := make(map[string]uint64, len(ids))
	s, err := l.JS.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("streamseq: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("streamseq: stream %s info: %w", stream, err)
	}
	last := info.State.LastSeq
	from = max(from, info.State.FirstSeq, 1)
	if info.State.Msgs == 0 || from > last {
		return found, nil
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		HeadersOnly:       true,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("streamseq: read %s from %d: %w", stream, from, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return nil, fmt.Errorf("streamseq: read %s from %d: %w", stream, from, err)
	}
	defer it.Stop()
	for len(found) < len(want) {
		mctx, cancel := context.WithTimeout(ctx, timeout)
		m, err := it.Next(jetstream.NextContext(mctx))
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return nil, fmt.Errorf("streamseq: read %s from %d: no message within %s", stream, from, timeout)
			}
			return nil, fmt.Errorf("streamseq: read %s from %d: %w", stream, from, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("streamseq: %s message metadata: %w", stream, err)
		}
		if id := m.Headers().Get(jetstream.MsgIDHeader); want[id] {
			if _, dup := found[id]; !dup {
				found[id] = md.Sequence.Stream
			}
		}
		if md.Sequence.Stream >= last || md.NumPending == 0 {
			break
		}
	}
	return found, nil
}

// Eraser implements privacy.StreamEraser over a JetStream context: it
// removes a message and overwrites its data (a secure delete), so that
// forgetting a person leaves nothing of theirs in the stream's files.
type Eraser struct{ JS jetstream.JetStream }

// Erase removes message seq of stream; one that is not there is no error.
func (e Eraser) Erase(ctx context.Context, stream string, seq uint64) error {
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("streamseq: stream %s: %w", stream, err)
	}
	err = s.SecureDeleteMsg(ctx, seq)
	if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	// The server answers a delete of a message already gone (erased by an
	// earlier pass over the same person) with a generic failure (10057
	// "no message found"), not with message-not-found: ask whether it is
	// still there.
	if _, gerr := s.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("streamseq: erase %s #%d: %w", stream, seq, err)
}
