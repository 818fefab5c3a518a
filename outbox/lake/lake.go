// Package lake keeps every event Cairn ever published, public and internal,
// in PostgreSQL (schema lake): the system-wide history that answers "how did
// we get here?", shows any entity as it was at any moment, and feeds
// analytics.
//
// It is filled without a second pipeline: the relay used to delete
// published outbox rows once JetStream had fsynced them; it now hands those
// rows to a Mover, which moves them into the lake in one transaction
// (DELETE ... RETURNING into INSERT), with the stream sequences from their
// publish acks. The business transaction is untouched.
//
// What the lake promises:
//   - every published event is in lake.events exactly once (an id is
//     unique for ever, through lake.ids), with its CloudEvents fields, its
//     stream and stream sequence;
//   - position is gap-free and strictly increasing in publish order (the
//     outbox's (txid, seq) order, which is commit order per key), assigned
//     by the single fenced mover under the lock of lake.head;
//   - rows are never updated or deleted (triggers refuse it);
//   - fields the event catalog tags cairn:"secret" never reach it.
//
// This package does not import NATS: modules register their folds here
// (Folds) without depending on the broker. Looking stream sequences up in
// JetStream lives in outbox/lake/streamseq, the Parquet export in
// outbox/lake/export.
package lake

import (
	"encoding/json"
	"time"
)

// Cursor is a place in the outbox's (txid, seq) order: the relay's cursor.
type Cursor struct{ TxID, Seq int64 }

// Ack is where JetStream stored one published event, from its publish ack
// (jetstream.PubAck.Stream and .Sequence; a duplicate's ack carries the
// sequence the event was first stored at).
type Ack struct {
	ID     string // the event id, sent as Nats-Msg-Id
	Stream string
	Seq    uint64
}

// Fence makes a move conditional on the caller still leading the relay.
// Cond returns an SQL boolean expression given the placeholder that binds
// Token; the move evaluates it first in its transaction and moves nothing
// if it is false (ErrFenced). A Cond that takes a row lock (FOR SHARE on
// the caller's lease row) orders the move with a takeover: the new leader's
// acquire waits for the move to commit, or the move finds the new token.
type Fence struct {
	Cond  func(param string) string
	Token int64
}

// Range is a run of outbox rows the relay published and JetStream has made
// durable: those after From up to To in (txid, seq) order, and, if
// CreatedBefore is set, created at or before it. Acks gives the stream
// sequence of each row whose publish ack the caller saw; a row without one
// (published by an earlier leader, or skipped because the streams held it
// already) is looked up in its stream.
type Range struct {
	From, To      Cursor
	CreatedBefore time.Time
	Acks          []Ack
	Fence         Fence
}

// Item is one event of the lake as every query returns it.
type Item struct {
	Position int64  `json:"position"`
	Stream   string `json:"stream"`
	// StreamSeq is null only for an event whose ack was lost and that its
	// stream no longer held when the mover looked it up.
	StreamSeq *int64     `json:"stream_seq"`
	Event     CloudEvent `json:"event"`
}

// CloudEvent is an event as it was published (less its secret fields):
// the CloudEvents 1.0 structured form of outbox.CloudEvent, with its
// visibility added as an extension.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
	TraceParent     string          `json:"traceparent,omitempty"`
	Visibility      string          `json:"visibility"`
}
