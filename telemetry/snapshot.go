package telemetry

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/lake"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/relay"
	"github.com/cairn-dev/cairn/outbox/saga"
)

// Breaker is the state of one circuit breaker around an outside system.
type Breaker struct {
	// System names the outside system ("smtp"): a fixed word, never an
	// address, since it becomes a metric label.
	System string `json:"system"`
	// State is BreakerClosed, BreakerHalfOpen or BreakerOpen.
	State string `json:"state"`
}

// The states of a Breaker.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half_open"
	BreakerOpen     = "open"
)

// BreakerStates are the states a Breaker can be in, in order.
var BreakerStates = []string{BreakerClosed, BreakerHalfOpen, BreakerOpen}

// Sources are what the figures are read from; any may be nil.
type Sources struct {
	Version   string
	Relay     *relay.Relay
	Consumers *consumer.Runtime
	// Pools are the database pools by role ("api", "handlers", "leases").
	Pools map[string]*pgxpool.Pool
	// Breakers returns the breakers of the modules that have any.
	Breakers func() []Breaker
	// Sagas are counted on DB (instances by type and status, timers);
	// nil without sagas.
	Sagas *saga.Registry
	DB    *pgxpool.Pool
	// Lake is the lake's mover, which counts the published events not
	// moved into the lake yet; nil with the lake off.
	Lake *lake.Mover
	// Exported returns when this process last exported the lake
	// successfully (zero if it has not); nil with exporting off.
	Exported func() time.Time
	// Projections are the projections' versions; nil without any.
	Projections *projection.Runtime
}

// Snapshot is everything /metrics and the console show, read at one moment:
// the Sample (refreshed in the background, see sampler) and the figures
// that cost nothing to read (counters in memory, the relay's role, pools,
// breakers), read now.
type Snapshot struct {
	Sample
	// Now is when the cheap figures were read, and what ages count from.
	Now        time.Time
	RelayState relay.State
	Consumers  []ConsumerFigures
	// Unconsumed counts the consumers nobody has been seen consuming for
	// longer than the runtime's FailingAfter: those /readyz names.
	Unconsumed int
	Pools      []PoolFigures
	Breakers   []Breaker
	// Exported is when this process last exported the lake (zero if it
	// has not, or exporting is off).
	Exported time.Time
}

// ConsumerFigures is one consumer, its runtime status joined with its
// backlog and dead letters.
type ConsumerFigures struct {
	consumer.Status
	Backlog     consumer.Backlog
	DeadLetters consumer.DeadLetterStat
	// Known reports whether Backlog and DeadLetters were read (false
	// when the sample failed).
	BacklogKnown, DeadLettersKnown bool
}

// Lag is the age of the oldest event the consumer had not handled when the
// sample was read, 0 when none waited. Ages count to the sample's time, so
// every reader of one sample (a scrape, the console) shows the same figure.
func (c ConsumerFigures) Lag(at time.Time) time.Duration { return c.Backlog.Lag(at) }

// DeadLetterAge is the age of the oldest dead letter, 0 when there is none.
func (c ConsumerFigures) DeadLetterAge(now time.Time) time.Duration {
	if c.DeadLetters.Count == 0 || c.DeadLetters.Oldest.IsZero() || now.Before(c.DeadLetters.Oldest) {
		return 0
	}
	return now.Sub(c.DeadLetters.Oldest)
}

// PoolFigures is one database pool.
type PoolFigures struct {
	Pool string
	Stat *pgxpool.Stat
}

// snapshot reads the cheap figures and joins them with the latest sample.
func (m *Metrics) snapshot(ctx context.Context) Snapshot {
	s := Snapshot{Sample: m.sampler.get(ctx), Now: time.Now()}
	if m.src.Relay != nil {
		s.RelayState = m.src.Relay.State()
	}
	if m.src.Consumers != nil {
		back := map[string]consumer.Backlog{}
		for _, b := range s.Backlogs {
			back[b.Consumer] = b
		}
		dead := map[string]consumer.DeadLetterStat{}
		for _, d := range s.DeadLetters {
			dead[d.Consumer] = d
		}
		for _, st := range m.src.Consumers.Status() {
			if st.Unconsumed > m.src.Consumers.FailingAfter() {
				s.Unconsumed++
			}
			b, bok := back[st.Consumer]
			d, dok := dead[st.Consumer]
			s.Consumers = append(s.Consumers, ConsumerFigures{Status: st, Backlog: b, DeadLetters: d,
				BacklogKnown: bok && s.BacklogErr == nil, DeadLettersKnown: dok && s.DeadErr == nil})
		}
	}
	for name, p := range m.src.Pools {
		s.Pools = append(s.Pools, PoolFigures{Pool: name, Stat: p.Stat()})
	}
	sort.Slice(s.Pools, func(i, j int) bool { return s.Pools[i].Pool < s.Pools[j].Pool })
	if m.src.Exported != nil {
		s.Exported = m.src.Exported()
	}
	if m.src.Breakers != nil {
		s.Breakers = m.src.Breakers()
		sort.Slice(s.Breakers, func(i, j int) bool { return s.Breakers[i].System < s.Breakers[j].System })
	}
	return s
}
