package console

import (
	"sync"
	"time"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/telemetry"
)

// rateWindow is how far back the Consumers page looks for the counters it
// takes rates against: rates average over up to this long.
const rateWindow = time.Minute

// minRateInterval is the shortest interval a rate is computed over: two
// loads a few milliseconds apart would give noise, not a rate.
const minRateInterval = time.Second

// rates keeps the consumers' counters as the Consumers page saw them, so a
// load can show handled/s and failed/s: the counters' difference since an
// earlier load, over the time between. The counters are this process's and
// only grow, so the difference is what this replica did in the interval.
type rates struct {
	mu      sync.Mutex
	samples []counterSample // oldest first
}

type counterSample struct {
	at     time.Time
	counts map[string]consumer.Counts
}

// consumerRate is one consumer's rates, Known false when there is no
// earlier sample to take them against.
type consumerRate struct {
	Known           bool
	Handled, Failed float64 // per second
}

// observe records the snapshot's counters and returns, per consumer, the
// rates since the oldest sample kept within rateWindow (and at least
// minRateInterval old), and the interval they cover (0 when none).
func (r *rates) observe(s telemetry.Snapshot) (map[string]consumerRate, time.Duration) {
	now := s.Now
	cur := counterSample{at: now, counts: map[string]consumer.Counts{}}
	for _, f := range s.Consumers {
		cur.counts[f.Consumer] = f.Counts
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Drop samples older than the window, but keep the newest of them: a
	// page loaded rarely still gets a rate, over a longer interval.
	for len(r.samples) > 1 && now.Sub(r.samples[1].at) >= rateWindow {
		r.samples = r.samples[1:]
	}
	var base *counterSample
	for i := range r.samples {
		if now.Sub(r.samples[i].at) >= minRateInterval {
			base = &r.samples[i]
			break
		}
	}
	out := map[string]consumerRate{}
	var over time.Duration
	if base != nil {
		over = now.Sub(base.at)
		for name, c := range cur.counts {
			b, ok := base.counts[name]
			if !ok || c.Handled < b.Handled || c.Failed < b.Failed {
				continue
			}
			sec := over.Seconds()
			out[name] = consumerRate{Known: true, Handled: float64(c.Handled-b.Handled) / sec, Failed: float64(c.Failed-b.Failed) / sec}
		}
	}
	r.samples = append(r.samples, cur)
	return out, over
}
