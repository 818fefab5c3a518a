package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-dev/cairn/outbox"
)

// maxInFlight bounds the messages fetched but not yet acked.
const maxInFlight = 256

// runSubscription campaigns for the consumer's lock and consumes while it
// holds it, backing off after errors, until ctx ends.
func (r *Runtime) runSubscription(ctx context.Context, s outbox.Subscription) {
	log := r.log.With("consumer", s.Consumer)
	failures := 0
	for ctx.Err() == nil {
		err := r.campaign(ctx, s)
		if ctx.Err() != nil {
			return
		}
		wait := r.opt.StandbyInterval
		if err != nil {
			failures++
			wait = jitter(min(100*time.Millisecond<<min(failures, 10), 10*time.Second))
			log.Warn("consumer error; backing off", "err", err, "wait", wait)
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// campaign takes the consumer's advisory lock on a connection of its own
// (held for as long as the session lives) and consumes until an error.
func (r *Runtime) campaign(ctx context.Context, s outbox.Subscription) error {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("consumer %s: connect: %w", s.Consumer, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('cairn.consumer.' || $1, 0))`, s.Consumer).Scan(&got); err != nil {
		return fmt.Errorf("consumer %s: lock: %w", s.Consumer, err)
	}
	if !got {
		return nil
	}
	r.setActive(s.Consumer, true)
	defer r.setActive(s.Consumer, false)
	r.log.Info("consuming", "consumer", s.Consumer, "event_type", s.EventType)
	return r.consume(ctx, conn, s)
}

// consume fetches messages and hands each to the lane of its key: lanes run
// concurrently, each in stream order.
func (r *Runtime) consume(ctx context.Context, lockConn *pgx.Conn, s outbox.Subscription) error {
	cons, err := r.takeOver(ctx, s)
	if err != nil {
		return err
	}
	w := &work{r: r, s: s, lanes: map[string]*lane{}, pending: map[jetstream.Msg]bool{}, gate: newGate()}
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); w.wg.Wait() }()
	lastCheck := time.Now()
	lastCleanup := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastCheck) > time.Second {
			// Losing the lock connection means another replica may take
			// over: stop before two handle the same keys.
			if err := lockConn.Ping(ctx); err != nil {
				return fmt.Errorf("consumer %s: lock connection lost: %w", s.Consumer, err)
			}
			w.heartbeat()
			lastCheck = time.Now()
		}
		if time.Since(lastCleanup) > r.opt.InboxCleanupEvery {
			r.cleanInbox(ctx, s.Consumer)
			lastCleanup = time.Now()
		}
		room := maxInFlight - w.inFlight()
		if room <= 0 || w.gate.isClosed() {
			sleepCtx(ctx, 50*time.Millisecond)
			continue
		}
		batch, err := cons.Fetch(room, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("consumer %s: fetch: %w", s.Consumer, err)
		}
		for m := range batch.Messages() {
			w.dispatch(ctx, m)
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("consumer %s: fetch: %w", s.Consumer, err)
		}
	}
	return nil
}

// takeOver declares the durable consumer. If a previous holder left
// messages unacked (it crashed), JetStream would redeliver them only after
// their ack wait, behind later messages of the same keys; so the consumer is
// recreated from its ack floor instead, which redelivers everything after
// it in stream order at once. What had been handled is skipped by the inbox.
func (r *Runtime) takeOver(ctx context.Context, s outbox.Subscription) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       s.Consumer,
		Description:   "Cairn handler " + s.Consumer,
		FilterSubject: outbox.Subject(s.EventType, s.Visibility),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       r.opt.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxInFlight * 4,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	stream := streamOf(s)
	if old, err := r.js.Consumer(ctx, stream, s.Consumer); err == nil {
		info, err := old.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: info: %w", s.Consumer, err)
		}
		if info.NumAckPending > 0 {
			if err := r.js.DeleteConsumer(ctx, stream, s.Consumer); err != nil {
				return nil, fmt.Errorf("consumer %s: reset: %w", s.Consumer, err)
			}
			cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cfg.OptStartSeq = info.AckFloor.Stream + 1
			r.log.Info("resuming from the ack floor", "consumer", s.Consumer, "start_seq", cfg.OptStartSeq, "unacked", info.NumAckPending)
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: look up: %w", s.Consumer, err)
	}
	cons, err := r.js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: declare durable consumer: %w", s.Consumer, err)
	}
	return cons, nil
}

// work is one consumer's in-flight state while this replica runs it.
type work struct {
	r       *Runtime
	s       outbox.Subscription
	mu      sync.Mutex
	lanes   map[string]*lane
	pending map[jetstream.Msg]bool
	gate    *gate
	wg      sync.WaitGroup
}

// lane is the queue of one key's messages, handled one at a time.
type lane struct{ queue []jetstream.Msg }

func (w *work) inFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
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
