package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
	"github.com/cairn-dev/cairn/outbox/lease"
	"github.com/cairn-dev/cairn/outbox/replay"
)

// maxInFlight bounds the messages fetched but not yet acked.
const maxInFlight = 256

// fetchWait is the longest a pull request stays open at the server. A new
// holder waits this long after winning the lease before it resets the
// durable, so that no pull request of the previous holder is still open
// to receive the redelivered messages.
const fetchWait = time.Second

// consume runs one term of the consumer's lease: it declares (or resets)
// the durable, then fetches messages and hands each to the lane of its key
// (lanes run concurrently, each in stream order), until the term ends. It
// returns only after every lane has stopped, so the lease is not given up
// while a handler of this term still runs.
func (r *Runtime) consume(ctx context.Context, t *lease.Term, s outbox.Subscription, st *state) error {
	st.startTerm(t, nil)
	defer st.endTerm()
	if !sleepCtx(ctx, fetchWait) {
		return nil
	}
	for ctx.Err() == nil {
		if run := st.wantedReplay(); run != nil && run.Mode == replay.ModeRebuild {
			if err := r.rebuild(ctx, t, s, st, run.ID); err != nil {
				return err
			}
			continue
		}
		if err := r.consumeLive(ctx, t, s, st); !errors.Is(err, errRebuildWanted) {
			return err
		}
	}
	return nil
}

// consumeLive fetches and dispatches until the term ends, or a rebuild is
// wanted (errRebuildWanted, once every lane has stopped). It starts a dry
// run of the consumer beside, in this term.
func (r *Runtime) consumeLive(ctx context.Context, t *lease.Term, s outbox.Subscription, st *state) error {
	log := r.log.With("consumer", s.Consumer, "token", t.Token)
	cons, err := r.takeOver(ctx, t, s)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w := &work{r: r, s: s, term: t, st: st, lanes: map[string]*lane{}, pending: map[jetstream.Msg]bool{}, gate: newGate(),
		// Looked up before any reset: what the durable had delivered
		// before this term, which a reset delivers again.
		redeliverUpTo: cons.CachedInfo().Delivered.Stream}
	st.setWork(w)
	lctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); w.wg.Wait() }()
	log.Info("consuming", "event_type", s.EventType)
	lastBeat := time.Now()
	lastCleanup := time.Time{}
	note := ""
	dryRuns := map[string]bool{} // started in this term
	for ctx.Err() == nil {
		if run := st.wantedReplay(); run != nil {
			switch {
			case run.Mode == replay.ModeRebuild:
				return errRebuildWanted
			case run.Mode == replay.ModeDryRun && !dryRuns[run.ID]:
				dryRuns[run.ID] = true
				id := run.ID
				w.wg.Go(func() { r.dryRun(lctx, t, s, st, id) })
			}
		}
		if time.Since(lastBeat) > time.Second && t.Valid() {
			w.heartbeat()
			lastBeat = time.Now()
		}
		if time.Since(lastCleanup) > r.opt.InboxCleanupEvery {
			r.cleanInbox(ctx, s.Consumer)
			lastCleanup = time.Now()
		}
		if want := w.note(); want != "" && want != note {
			if err := lease.SetNote(ctx, r.opt.LeasePool, t, want); err != nil {
				if ctx.Err() != nil || errors.Is(err, lease.ErrNotHolder) {
					return nil
				}
				log.Warn("cannot record the consumer's state in its lease", "err", err)
			} else {
				note = want
			}
		}
		room := maxInFlight - w.inFlight()
		// A pull request must not outlive the term: the next holder's
		// redeliveries would go to it.
		wait := min(fetchWait, t.Remaining()-250*time.Millisecond)
		if room <= 0 || w.gate.isClosed() || st.heldByOperator() || wait < 50*time.Millisecond {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		batch, err := cons.Fetch(room, jetstream.FetchMaxWait(wait))
		if err != nil {
			return fmt.Errorf("consumer %s: fetch: %w", s.Consumer, err)
		}
		for m := range batch.Messages() {
			w.dispatch(lctx, m)
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("consumer %s: fetch: %w", s.Consumer, err)
		}
		st.setConsuming()
	}
	return nil
}

// work is one consumer's in-flight state while this replica runs it.
type work struct {
	r       *Runtime
	s       outbox.Subscription
	term    *lease.Term
	st      *state
	mu      sync.Mutex
	lanes   map[string]*lane
	pending map[jetstream.Msg]bool
	gate    *gate
	wg      sync.WaitGroup
	// redeliverUpTo is the last stream sequence the durable had delivered
	// when this term took it over: a message up to it is a redelivery,
	// though a reset starts its delivery count again at 1.
	redeliverUpTo uint64
}

// lane is the queue of one key's messages, handled one at a time.
type lane struct{ queue []jetstream.Msg }

func (w *work) inFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// note is what the holder says in its lease row: consuming, or paused
// while an outside system is down; "" before the first fetch.
func (w *work) note() string {
	if w.st.heldByOperator() {
		return notePaused + "by an operator"
	}
	if w.gate.isClosed() {
		return notePaused + w.gate.why()
	}
	w.st.mu.Lock()
	defer w.st.mu.Unlock()
	if !w.st.consuming {
		return ""
	}
	return noteConsuming
}

// heartbeat tells JetStream we are still working on every pending message,
// so a paused or retrying key is not redelivered behind our back.
func (w *work) heartbeat() {
	w.mu.Lock()
	msgs := make([]jetstream.Msg, 0, len(w.pending))
	for m := range w.pending {
		msgs = append(msgs, m)
	}
	w.mu.Unlock()
	for _, m := range msgs {
		_ = m.InProgress()
	}
}

func (w *work) dispatch(ctx context.Context, m jetstream.Msg) {
	key := m.Headers().Get("Nats-Msg-Id") // fallback: an event we cannot parse goes in a lane of its own
	if k, ok := keyOf(m.Data()); ok {
		key = k
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[m] = true
	if l, ok := w.lanes[key]; ok {
		l.queue = append(l.queue, m)
		return
	}
	l := &lane{queue: []jetstream.Msg{m}}
	w.lanes[key] = l
	w.wg.Add(1)
	go w.runLane(ctx, key, l)
}

func (w *work) runLane(ctx context.Context, key string, l *lane) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(l.queue) == 0 || ctx.Err() != nil {
			delete(w.lanes, key)
			w.mu.Unlock()
			return
		}
		m := l.queue[0]
		l.queue = l.queue[1:]
		w.mu.Unlock()
		w.r.deliver(ctx, w, m)
		w.mu.Lock()
		delete(w.pending, m)
		w.mu.Unlock()
	}
}

func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
