package lease

import (
	"sync/atomic"
	"time"
)

// epoch anchors the monotonic clock terms are measured on: time.Since
// reads the monotonic clock, which keeps running while the process is
// frozen, so a holder woken by SIGCONT sees at once that its term is over.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

// Term is one holder's tenure of a lease.
type Term struct {
	Name   string
	Holder string
	// Token increases with every takeover of the lease: the fencing token
	// writes of this term can be made conditional on.
	Token int64

	validUntil atomic.Int64 // on the monotonic clock; -1 once ended
	ttl        time.Duration
}

// extend moves the term's end to sent+ttl if that is later, sent being when
// the acquire or renew that succeeded was sent.
func (t *Term) extend(sent, ttl time.Duration) {
	until := int64(sent + ttl)
	for {
		cur := t.validUntil.Load()
		if cur < 0 || until <= cur {
			return
		}
		if t.validUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// end marks the term over for good.
func (t *Term) end() { t.validUntil.Store(-1) }

// Valid reports whether the term still holds by this process's monotonic
// clock. Check it just before an outside effect (an email, a publish) that
// the database cannot fence.
func (t *Term) Valid() bool { return int64(now()) < t.validUntil.Load() }

// Remaining is how long the term holds without another renewal.
func (t *Term) Remaining() time.Duration {
	return max(time.Duration(t.validUntil.Load())-now(), 0)
}

// CheckBeforeEffect returns nil while the term holds for at least a third
// of the lease's TTL more, ErrExpired otherwise. An outside effect (an
// email) cannot be fenced: one started just before the term ends can still
// be in flight when the next holder, which cannot know it happened, does it
// again. Starting none in the last third of the term, when renewals have
// already been missed, leaves that much time for the effect to finish.
func (t *Term) CheckBeforeEffect() error {
	if t.Remaining() >= t.ttl/3 && t.Valid() {
		return nil
	}
	return ErrExpired
}

// Check returns nil while the term is valid and ErrExpired after.
func (t *Term) Check() error {
	if t.Valid() {
		return nil
	}
	return ErrExpired
}
