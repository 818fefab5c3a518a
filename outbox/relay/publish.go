package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cairn-dev/cairn/outbox"
)

// chain is this term's view of one stream. Every message the term sends
// carries Nats-Expected-Last-Sequence: the sequence its predecessor in the
// stream is predicted to have. The stream stores a message only if its last
// sequence is that one, so the stream grows only along this term's chain:
// once a message fails (a stream leader change lost it, a NATS node went
// away), every later one fails too instead of landing ahead of it, and a
// message an ended term sent late finds the chain moved on. JetStream checks
// the header against its proposed sequence, so pipelined publishes to a
// clustered stream chain too; a duplicate (Nats-Msg-Id) is acked with its
// stored sequence and does not advance the stream, which the ack check
// below catches.
type chain struct {
	last uint64 // sequence the last submitted message is predicted to take
	from uint64 // first sequence this term's reconcile read
	safe uint64 // persistable: see leader.persistStreams
}

// expect is one awaited ack: of a single message, or of the commit message
// of an atomic batch.
type expect struct {
	stream  string
	seq     uint64 // the sequence the ack must report
	msg     int    // index in round.msgs of the acked message
	settled bool
}

// round is one read batch: the rows read, the ones sent, and their acks.
type round struct {
	through  cursor // last row read: the cursor once the round is acked
	nrows    int
	skipped  int // rows skipped because the streams hold them already
	msgs     []row
	expects  []expect
	atomic   bool
	firstID  uint64 // reply id of expects[0]
	deadline time.Time
	pending  int
	err      error
	errAt    int    // expect that failed
	dupAt    uint64 // sequence a duplicate was found at, below the chain
	dupIn    string // in this stream
	done     chan struct{}
	closed   bool
	sent     time.Time // when its messages went out
}

// publisher sends one term's messages and collects their acks on a reply
// subscription of its own, so an ack of an ended term is never taken for
// one of this term.
type publisher struct {
	nc     *nats.Conn
	sub    *nats.Subscription
	prefix string
	token  string // the term's lease token, stamped on every message
	mu     sync.Mutex
	next   uint64
	rounds []*round // awaiting acks, oldest first
}

func newPublisher(nc *nats.Conn, token int64) (*publisher, error) {
	inbox := nc.NewInbox()
	p := &publisher{nc: nc, prefix: inbox + ".", token: strconv.FormatInt(token, 10)}
	sub, err := nc.Subscribe(inbox+".*", p.onAck)
	if err != nil {
		return nil, fmt.Errorf("relay: subscribe to acks: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("relay: ack subscription limits: %w", err)
	}
	p.sub = sub
	return p, nil
}

func (p *publisher) close() { _ = p.sub.Unsubscribe() }

// Header names of JetStream atomic batch publish (nats-server 2.12+).
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// TermHeader carries the lease token of the relay term that published a
// message. Terms only grow, so in each stream the token never decreases
// from one message to the next: that is what the expected-sequence fence
// guarantees, and what the fault suite checks.
const TermHeader = "Cairn-Relay-Term"

// relayHeaderBytes bounds what the relay's headers add to a message, for
// the size check against the server's max_payload.
const relayHeaderBytes = 256

// traceParent finds the CloudEvent's traceparent attribute in its encoded
// form without decoding it: outbox.Queue writes it as a plain JSON string
// of the W3C format, which has no character JSON escapes.
func traceParent(payload []byte) string {
	const key = `"traceparent":"`
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return ""
	}
	rest := payload[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 128 {
		return ""
	}
	return string(rest[:j])
}

// streamOf returns the stream a subject belongs to.
func streamOf(subject string) string {
	switch {
	case strings.HasPrefix(subject, outbox.PublicPrefix):
		return outbox.PublicStream
	case strings.HasPrefix(subject, outbox.InternalPrefix):
		return outbox.InternalStream
	}
	return ""
}

// send publishes a round's messages along the chains: one message per ack,
// or, atomic, one batch per stream whose first message carries the chain's
// expectation and whose commit message is acked.
func (p *publisher) send(rd *round, chains map[string]*chain, ackTimeout time.Duration) error {
	msgs := make([]*nats.Msg, len(rd.msgs))
	replyOf := make([]int, len(rd.msgs)) // index into rd.expects, or -1
	for i, m := range rd.msgs {
		msgs[i] = &nats.Msg{Subject: m.subject, Data: m.payload, Header: nats.Header{
			jetstream.MsgIDHeader: []string{m.id},
			TermHeader:            []string{p.token},
			"Content-Type":        []string{outbox.ContentType},
		}}
		if tp := traceParent(m.payload); tp != "" {
			// Lowercase, as W3C Trace Context names it; nats.Header.Set
			// would canonicalise it.
			msgs[i].Header["traceparent"] = []string{tp}
		}
		replyOf[i] = -1
	}
	if rd.atomic {
		groups := map[string][]int{}
		var order []string
		for i, m := range rd.msgs {
			s := streamOf(m.subject)
			if _, ok := groups[s]; !ok {
				order = append(order, s)
			}
			groups[s] = append(groups[s], i)
		}
		for _, s := range order {
			c := chains[s]
			if c == nil {
				return fmt.Errorf("relay: no stream for subject %s", rd.msgs[groups[s][0]].subject)
			}
			idx := groups[s]
			msgs[idx[0]].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
			if len(idx) > 1 {
				id := nuid.Next()
				for j, i := range idx {
					msgs[i].Header.Set(batchIDHeader, id)
					msgs[i].Header.Set(batchSeqHeader, strconv.Itoa(j+1))
				}
				msgs[idx[len(idx)-1]].Header.Set(batchCommitHeader, "1")
			}
			c.last += uint64(len(idx))
			last := idx[len(idx)-1]
			replyOf[last] = len(rd.expects)
			rd.expects = append(rd.expects, expect{stream: s, seq: c.last, msg: last})
		}
	} else {
		for i, m := range rd.msgs {
			s := streamOf(m.subject)
			c := chains[s]
			if c == nil {
				return fmt.Errorf("relay: no stream for subject %s", m.subject)
			}
			msgs[i].Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(c.last, 10))
			c.last++
			replyOf[i] = len(rd.expects)
			rd.expects = append(rd.expects, expect{stream: s, seq: c.last, msg: i})
		}
	}
	p.mu.Lock()
	rd.firstID = p.next
	p.next += uint64(len(rd.expects))
	rd.pending = len(rd.expects)
	rd.deadline = time.Now().Add(ackTimeout)
	p.rounds = append(p.rounds, rd)
	p.mu.Unlock()
	for i, m := range msgs {
		if k := replyOf[i]; k >= 0 {
			m.Reply = p.prefix + strconv.FormatUint(rd.firstID+uint64(k), 10)
		}
		if err := p.nc.PublishMsg(m); err != nil {
			p.abandon(rd)
			return fmt.Errorf("relay: publish %s (event %s): %w", m.Subject, rd.msgs[i].id, err)
		}
	}
	return nil
}

// pubAck is JetStream's answer to a publish.
type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate"`
	Error     *apiError `json:"error"`
}

// apiError is an error JetStream answered with.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("jetstream: %s (status %d, err_code %d)", e.Description, e.Code, e.ErrCode)
}

// JetStream error codes the relay acts on.
const (
	errCodeWrongLastSeq = 10071 // JSStreamWrongLastSequenceErr
	errCodeMsgTooBig    = 10054 // JSStreamMessageExceedsMaximumErr
	errCodeHeaderTooBig = 10097 // JSStreamHeaderExceedsMaximumErr
	errCodeStoreFailed  = 10077 // JSStreamStoreFailedF, "message too large" among others
)

var errNoResponders = errors.New("relay: no responders: the stream has no leader right now")

// neverAccepted reports whether err says the server will never store this
// message, whatever is retried: it must be parked.
func neverAccepted(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrCode {
	case errCodeMsgTooBig, errCodeHeaderTooBig:
		return true
	case errCodeStoreFailed:
		return strings.Contains(strings.ToLower(ae.Description), "too large")
	}
	return false
}

func (p *publisher) onAck(m *nats.Msg) {
	id, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, p.prefix), 10, 64)
	if err != nil {
		return
	}
	var a pubAck
	var aerr error
	switch {
	case len(m.Data) == 0 && m.Header.Get("Status") == "503":
		aerr = errNoResponders
	case json.Unmarshal(m.Data, &a) != nil:
		aerr = fmt.Errorf("relay: unreadable publish ack %q", m.Data)
	case a.Error != nil:
		aerr = a.Error
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, rd := range p.rounds {
		if id < rd.firstID || id >= rd.firstID+uint64(len(rd.expects)) {
			continue
		}
		k := int(id - rd.firstID)
		e := &rd.expects[k]
		if e.settled {
			return
		}
		e.settled = true
		rd.pending--
		if aerr == nil && a.Duplicate && a.Stream == e.stream && a.Seq < e.seq && rd.dupAt == 0 {
			rd.dupAt, rd.dupIn = a.Seq, e.stream
		}
		if aerr == nil && (a.Stream != e.stream || a.Seq != e.seq) {
			aerr = fmt.Errorf("relay: the stream did not take this message where the chain expected it: %s got sequence %d, expected %d (duplicate: %v)", e.stream, a.Seq, e.seq, a.Duplicate)
		}
		if aerr != nil && rd.err == nil {
			rd.err, rd.errAt = aerr, k
		}
		if rd.err != nil || rd.pending == 0 {
			rd.finish()
			p.rounds = append(p.rounds[:i], p.rounds[i+1:]...)
		}
		return
	}
}

// abandon stops waiting for a round's acks.
func (p *publisher) abandon(rd *round) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.rounds {
		if x == rd {
			p.rounds = append(p.rounds[:i], p.rounds[i+1:]...)
			break
		}
	}
	rd.finish()
}

// finish marks the round complete (p.mu held, or the round not shared).
func (rd *round) finish() {
	if !rd.closed {
		rd.closed = true
		close(rd.done)
	}
}

// result returns the round's error and which expect failed, read under
// p.mu.
func (p *publisher) result(rd *round) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return rd.errAt, rd.err
}
