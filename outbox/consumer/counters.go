package consumer

import (
	"sort"
	"sync/atomic"
)

// Counts are what one consumer did in this replica since it started: the
// figures /metrics exports as counters (so they restart at zero with the
// process, as Prometheus expects) and the console shows.
type Counts struct {
	// Handled events: their handler committed here.
	Handled uint64 `json:"handled"`
	// Failed handler attempts (retried, parked, or probing while paused).
	Failed uint64 `json:"failed"`
	// Redelivered messages: JetStream delivered them more than once (after
	// a takeover, or an ack that did not arrive).
	Redelivered uint64 `json:"redelivered"`
	// Duplicates the inbox absorbed: events already handled, skipped
	// without a second effect.
	Duplicates uint64 `json:"duplicates"`
	// DeadLettered events: parked in inbox.dead_letters.
	DeadLettered uint64 `json:"dead_lettered"`
}

// counters is Counts as the runtime updates them.
type counters struct {
	handled, failed, redelivered, duplicates, deadLettered atomic.Uint64
}

func (c *counters) load() Counts {
	return Counts{Handled: c.handled.Load(), Failed: c.failed.Load(), Redelivered: c.redelivered.Load(),
		Duplicates: c.duplicates.Load(), DeadLettered: c.deadLettered.Load()}
}

// counts returns the counters of consumer (a throwaway for a name that is
// not in this runtime, so callers need not check).
func (r *Runtime) counts(consumer string) *counters {
	if st, ok := r.states[consumer]; ok {
		return &st.n
	}
	return &counters{}
}

// names returns the consumers' names, sorted.
func (r *Runtime) names() []string {
	out := make([]string, 0, len(r.subs))
	for name := range r.subs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
