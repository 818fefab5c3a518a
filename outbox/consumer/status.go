package consumer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cairn-dev/cairn/outbox/lease"
	"github.com/cairn-dev/cairn/outbox/replay"
)

// State is what a consumer is doing, as this replica sees it.
type State string

// The states Status reports.
const (
	// Consuming: this replica holds the lease and fetches and handles.
	Consuming State = "consuming"
	// Starting: this replica won the lease and is declaring or resetting
	// the durable consumer.
	Starting State = "starting"
	// Paused: this replica holds the lease, and either an outside system
	// is down (outbox.Unavailable; it retries one event slowly) or an
	// operator paused the consumer (Pause); PausedBy says which.
	Paused State = "paused"
	// StandingBy: another replica holds the lease, or nobody does and this
	// one has not failed.
	StandingBy State = "standing_by"
	// Failing: this replica's last attempt to consume failed (Reason says
	// why), and nobody has been seen consuming since; it may be trying
	// again.
	Failing State = "failing"
	// Stopped: the runtime is not running.
	Stopped State = "stopped"
)

// Status is one consumer's state, for /readyz, the console and metrics.
type Status struct {
	Consumer  string `json:"consumer"`
	EventType string `json:"event_type"`
	State     State  `json:"state"`
	// Reason says why it is paused or failing.
	Reason string `json:"reason,omitempty"`
	// InFlight counts messages fetched and not yet acked here.
	InFlight int `json:"in_flight"`
	// LastError is this replica's last error about the consumer, if any.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Unconsumed is how long nobody has been seen consuming it (0 while
	// someone is); past Options.FailingAfter, Ready reports it.
	Unconsumed time.Duration `json:"unconsumed"`
	Lease      LeaseStatus   `json:"lease"`
	// Pauses say why the consumer handles no events, if it does not:
	// PausedByOperator (Pause, seen by every replica) and, on the holder,
	// PausedByOutsideSystem. Empty when it is not paused.
	Pauses []string `json:"pauses,omitempty"`
	// Counts are this replica's counters.
	Counts Counts `json:"counts"`
}

// The reasons in Status.Pauses: a fixed set, used as a metric label.
const (
	PausedByOperator      = "operator"
	PausedByOutsideSystem = "outside_system"
)

// LeaseStatus is the consumer's lease as last read from outbox.leases.
type LeaseStatus struct {
	Holder string `json:"holder,omitempty"`
	Token  int64  `json:"token,omitempty"`
	// Live: the holder's term has not expired.
	Live bool `json:"live"`
	// Mine: this replica is the holder.
	Mine bool `json:"mine"`
	// Note is what the holder says it is doing ("consuming", "paused: …").
	Note string `json:"note,omitempty"`
}

// state is one consumer's bookkeeping in this replica.
type state struct {
	lease *lease.Lease

	mu        sync.Mutex
	term      *lease.Term // while this replica holds the lease
	consuming bool        // this term has fetched successfully
	work      *work
	lastErr   string
	lastErrAt time.Time
	row       lease.Row
	rowSeen   bool
	badSince  time.Time // first moment nobody was seen consuming; zero while someone is
	held      operatorPause
	replay    *replay.Run // the consumer's running replay, if any

	n counters
}

func (st *state) holding() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.term != nil
}

// failed records an error of this replica's (the lease's, or one that
// ended a term).
func (st *state) failed(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lastErr, st.lastErrAt = err.Error(), time.Now()
	if st.badSince.IsZero() {
		st.badSince = time.Now()
	}
}

func (st *state) startTerm(t *lease.Term, w *work) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.term, st.consuming, st.work = t, false, w
}

func (st *state) endTerm() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.term, st.consuming, st.work = nil, false, nil
}

func (st *state) setWork(w *work) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.work = w
}

// setConsuming records that this term fetched successfully: someone (this
// replica) is consuming.
func (st *state) setConsuming() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.consuming = true
	st.badSince = time.Time{}
}

// saw records the lease row as the database has it now (ok false: there is
// none). A live holder that says it is consuming (or paused, waiting for an
// outside system) means the consumer is being consumed; anything else (no
// live holder, or one still starting) means it is not.
func (st *state) saw(row lease.Row, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.row, st.rowSeen = row, ok
	good := (st.term != nil && st.consuming) ||
		(ok && row.Live && (row.Note == noteConsuming || strings.HasPrefix(row.Note, notePaused)))
	switch {
	case good:
		st.badSince = time.Time{}
	case st.badSince.IsZero():
		st.badSince = time.Now()
	}
}

// The notes a holder writes in its lease row.
const (
	noteConsuming = "consuming"
	notePaused    = "paused: "
)

// observe reads every consumer's lease row once a second, so that each
// replica knows whether anyone is consuming each consumer.
func (r *Runtime) observe(ctx context.Context) {
	names := make([]string, 0, len(r.states))
	for c := range r.states {
		names = append(names, leaseName(c))
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rows, err := lease.Read(cctx, r.opt.LeasePool, names)
		if err == nil {
			for c, st := range r.states {
				row, ok := rows[leaseName(c)]
				st.saw(row, ok)
			}
		} else if ctx.Err() == nil {
			r.log.Warn("cannot read the consumers' leases", "err", err)
		}
		if err := r.readPauses(cctx); err != nil && ctx.Err() == nil {
			r.log.Warn("cannot read the consumers' pauses", "err", err)
		}
		if err := r.readReplays(cctx); err != nil && ctx.Err() == nil {
			r.log.Warn("cannot read the replays", "err", err)
		}
		cancel()
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// Status returns every consumer's state, sorted by name.
func (r *Runtime) Status() []Status {
	out := make([]Status, 0, len(r.states))
	running := r.running.Load()
	for c, st := range r.states {
		out = append(out, st.status(c, r.subs[c].EventType, running, st.lease.Holder()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Consumer < out[j].Consumer })
	return out
}

func (st *state) status(consumer, eventType string, running bool, me string) Status {
	st.mu.Lock()
	s := Status{Consumer: consumer, EventType: eventType, LastError: st.lastErr, LastErrorAt: st.lastErrAt}
	if !st.badSince.IsZero() {
		s.Unconsumed = time.Since(st.badSince)
	}
	if st.rowSeen {
		s.Lease = LeaseStatus{Holder: st.row.Holder, Token: st.row.Token, Live: st.row.Live, Note: st.row.Note,
			Mine: st.row.Holder == me && st.term != nil && st.term.Token == st.row.Token}
	}
	w := st.work
	paused := w != nil && w.gate.isClosed()
	held := st.held
	switch {
	case !running:
		s.State = Stopped
	case held.on && st.term != nil:
		s.State, s.Reason = Paused, "paused by an operator: "+held.reason
	case st.term != nil && paused:
		s.State, s.Reason = Paused, w.gate.why()
	case st.term != nil && st.consuming:
		s.State = Consuming
	case !st.badSince.IsZero() && st.lastErr != "" && !st.lastErrAt.Before(st.badSince):
		// Failed since anyone last consumed it, and not consuming now
		// (perhaps trying again).
		s.State, s.Reason = Failing, st.lastErr
	case st.term != nil:
		s.State = Starting
	default:
		s.State = StandingBy
	}
	st.mu.Unlock()
	if w != nil {
		s.InFlight = w.inFlight()
	}
	s.Counts = st.n.load()
	if held.on {
		s.Pauses = append(s.Pauses, PausedByOperator)
	}
	if running && paused {
		s.Pauses = append(s.Pauses, PausedByOutsideSystem)
	}
	return s
}

// FailingAfter is how long nobody may be seen consuming a consumer before
// Ready reports it (Options.FailingAfter): /metrics counts the consumers
// past it, so the metric and /readyz agree.
func (r *Runtime) FailingAfter() time.Duration { return r.opt.FailingAfter }

// Ready returns nil while every consumer is being consumed by some replica,
// and otherwise an error naming each consumer nobody has been seen
// consuming for longer than Options.FailingAfter, with why. A consumer
// paused because an outside system is down counts as consumed: it resumes
// by itself, and taking this replica out of service would not help.
func (r *Runtime) Ready() error {
	if !r.running.Load() {
		return fmt.Errorf("consumer runtime is not running")
	}
	var bad []string
	for _, s := range r.Status() {
		if s.Unconsumed <= r.opt.FailingAfter {
			continue
		}
		why := "no replica holds its lease"
		if s.Lease.Live && s.Lease.Holder != "" {
			why = fmt.Sprintf("held by %s (token %d), which is not consuming", s.Lease.Holder, s.Lease.Token)
		}
		if s.LastError != "" {
			why += "; last error here: " + s.LastError
		}
		bad = append(bad, fmt.Sprintf("consumer %s not consumed for %s: %s", s.Consumer, s.Unconsumed.Round(time.Second), why))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}
