package relay

import (
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with full jitter, so replicas that
// failed together do not retry together.
type backoff struct {
	base, max time.Duration
	attempt   int
}

func (b *backoff) next() time.Duration {
	d := b.base << min(b.attempt, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.attempt++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.attempt = 0 }
