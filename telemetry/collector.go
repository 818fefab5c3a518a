package telemetry

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-dev/cairn/outbox/consumer"
	"github.com/cairn-dev/cairn/outbox/projection"
	"github.com/cairn-dev/cairn/outbox/relay"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The series, by what they describe. Consumer series carry the durable's
// name, which the code fixes; about a dozen per consumer.
var (
	descBuildInfo  = desc("cairn_build_info", "Always 1; the version label is the running build.", "version")
	descSampleTime = desc("cairn_metrics_sample_timestamp_seconds", "When the sampled figures (backlogs, dead letters, JetStream consumer figures) were read, Unix time.")
	descSampleTook = desc("cairn_metrics_sample_duration_seconds", "How long reading the sampled figures took.")

	descRelayLeader    = desc("cairn_relay_leader", "1 while this replica's relay leads (publishes), 0 while it stands by or is stopped.")
	descRelayPublished = desc("cairn_relay_published_events_total", "Events this replica's relay published (JetStream acknowledged them).")
	descRelayErrors    = desc("cairn_relay_publish_errors_total", "Publishes of this replica's relay that failed or were not acknowledged in time.")
	descBacklog        = desc("cairn_outbox_backlog_events", "Committed events the relay has not published yet (by its last persisted cursor; the same on every replica).")
	descBacklogAge     = desc("cairn_outbox_oldest_unpublished_age_seconds", "Age of the oldest committed event not published yet; 0 when none waits.")

	descPending    = desc("cairn_consumer_pending_events", "Events in the consumer's stream not yet delivered to it (JetStream num_pending).", "consumer")
	descAckPending = desc("cairn_consumer_ack_pending_events", "Events delivered to the consumer and not yet acknowledged: being handled, retried or held by a pause.", "consumer")
	descLag        = desc("cairn_consumer_lag_seconds", "Age of the oldest event the consumer has not handled yet; 0 when it is caught up.", "consumer")
	descHandled    = desc("cairn_consumer_handled_events_total", "Events whose handler committed in this replica.", "consumer")
	descFailed     = desc("cairn_consumer_failed_attempts_total", "Handler attempts that failed in this replica (retried, parked, or probing while an outside system is down).", "consumer")
	descRedeliv    = desc("cairn_consumer_redelivered_events_total", "Messages JetStream delivered to this replica more than once (after a takeover or a lost ack).", "consumer")
	descDuplicates = desc("cairn_consumer_duplicate_events_total", "Events this replica found already handled in the inbox and skipped without a second effect.", "consumer")
	descPaused     = desc("cairn_consumer_paused", "1 while the consumer is paused, by reason: operator (paused by hand, on every replica) or outside_system (on the holder, while a system it calls is down).", "consumer", "reason")
	descDead       = desc("cairn_consumer_dead_letters", "Events the consumer gave up on, kept in inbox.dead_letters.", "consumer")
	descDeadAge    = desc("cairn_consumer_dead_letters_oldest_age_seconds", "Age of the consumer's oldest dead letter (since its last failure); 0 when it has none.", "consumer")
	descUnconsumed = desc("cairn_consumers_unconsumed", "Consumers no replica has been seen consuming for longer than a minute (what /readyz reports; it names them).")

	descSagaOpen     = desc("cairn_saga_instances", "Saga instances that are not finished, by saga type and status: running, or stuck (a step gave up; an operator retries or cancels it).", "type", "status")
	descSagaTimerAge = desc("cairn_saga_timers_oldest_due_age_seconds", "How long the oldest due saga timer has waited to fire; 0 when none is due. Timers fire within about 100 ms while a replica fires them.")
	descLakeUnmoved  = desc("cairn_lake_unmoved_events", "Published events not moved into the lake yet: they wait for JetStream's fsync (the relay's delete delay), then for the mover.")
	descLakeExported = desc("cairn_lake_export_last_success_timestamp_seconds", "When this replica's last successful lake export run started, Unix time; 0 before its first (only the replica holding the export lease exports: take the max over replicas).")

	descProjLive     = desc("cairn_projection_live_version", "The version of the projection that answers queries; 0 before its first version goes live.", "projection")
	descProjLagEv    = desc("cairn_projection_lag_events", "Events of the projection's types the stream held beyond what its live version had applied, at that version's last batch; 0 when caught up.", "projection")
	descProjLagSec   = desc("cairn_projection_lag_seconds", "While the live version is behind (lag events above 0), the age of the newest event it has applied; 0 when caught up.", "projection")
	descProjBuilding = desc("cairn_projection_build_remaining_events", "Events a version that is not live yet has left to read: from the lake while it builds, from the stream while it catches up; 0 when none is on its way.", "projection")
	descProjFailed   = desc("cairn_projection_failed_versions", "Versions of the projection that failed (a build error, or verification found rows that disagree) and stay failed until rebuilt: see GET /api/v1/admin/projections.", "projection")

	descBreaker = desc("cairn_circuit_breaker_state", "1 for the state the circuit breaker around an outside system is in, 0 for the others.", "system", "state")

	descPoolAcquired = desc("cairn_db_pool_acquired_connections", "Connections of the pool in use.", "pool")
	descPoolIdle     = desc("cairn_db_pool_idle_connections", "Connections of the pool open and idle.", "pool")
	descPoolMax      = desc("cairn_db_pool_max_connections", "The pool's size limit.", "pool")
	descPoolAcquires = desc("cairn_db_pool_acquires_total", "Connections taken from the pool.", "pool")
	descPoolWaits    = desc("cairn_db_pool_empty_acquires_total", "Times a caller had to wait for a connection because none was idle.", "pool")
	descPoolWaitSec  = desc("cairn_db_pool_acquire_wait_seconds_total", "Time spent waiting to take connections from the pool.", "pool")
)

// pausedReasons are the values of cairn_consumer_paused's reason label.
var pausedReasons = []string{consumer.PausedByOperator, consumer.PausedByOutsideSystem}

// collector turns a Snapshot into series at each scrape.
type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuildInfo, descSampleTime, descSampleTook, descRelayLeader, descRelayPublished,
		descRelayErrors, descBacklog, descBacklogAge, descPending, descAckPending, descLag, descHandled, descFailed,
		descRedeliv, descDuplicates, descPaused, descDead, descDeadAge, descUnconsumed, descSagaOpen, descSagaTimerAge, descLakeUnmoved, descLakeExported,
		descProjLive, descProjLagEv, descProjLagSec, descProjBuilding, descProjFailed, descBreaker, descPoolAcquired, descPoolIdle,
		descPoolMax, descPoolAcquires, descPoolWaits, descPoolWaitSec} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s := c.m.snapshot(ctx)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descBuildInfo, 1, c.m.src.Version)
	if !s.At.IsZero() {
		gauge(descSampleTime, float64(s.At.UnixMilli())/1000)
		gauge(descSampleTook, s.Took.Seconds())
	}

	if c.m.src.Relay != nil {
		gauge(descRelayLeader, b2f(s.RelayState == relay.Leader))
		counter(descRelayPublished, float64(s.Relay.Published))
		counter(descRelayErrors, float64(s.Relay.PublishErrors))
		if s.RelayErr == nil && !s.At.IsZero() {
			gauge(descBacklog, float64(s.Relay.Backlog))
			gauge(descBacklogAge, s.Relay.OldestAgeSeconds)
		}
	}

	for _, f := range s.Consumers {
		name := f.Consumer
		if f.BacklogKnown {
			gauge(descPending, float64(f.Backlog.Pending), name)
			gauge(descAckPending, float64(f.Backlog.AckPending), name)
			gauge(descLag, f.Lag(s.At).Seconds(), name)
		}
		counter(descHandled, float64(f.Counts.Handled), name)
		counter(descFailed, float64(f.Counts.Failed), name)
		counter(descRedeliv, float64(f.Counts.Redelivered), name)
		counter(descDuplicates, float64(f.Counts.Duplicates), name)
		for _, reason := range pausedReasons {
			gauge(descPaused, b2f(slices.Contains(f.Pauses, reason)), name, reason)
		}
		if f.DeadLettersKnown {
			gauge(descDead, float64(f.DeadLetters.Count), name)
			gauge(descDeadAge, f.DeadLetterAge(s.At).Seconds(), name)
		}
	}

	if c.m.src.Consumers != nil {
		gauge(descUnconsumed, float64(s.Unconsumed))
	}

	if c.m.src.Sagas != nil && c.m.src.DB != nil && s.SagasErr == nil && !s.At.IsZero() {
		for _, o := range s.Sagas.Open {
			gauge(descSagaOpen, float64(o.Count), o.Type, string(o.Status))
		}
		gauge(descSagaTimerAge, s.Sagas.OldestDueTimer.Seconds())
	}
	if c.m.src.Lake != nil && s.UnmovedErr == nil && !s.At.IsZero() {
		gauge(descLakeUnmoved, float64(s.Unmoved))
	}
	if c.m.src.Exported != nil {
		// 0 until this replica's first success: a standby's, or one
		// whose exports all fail, so max() over the replicas still ages.
		exported := 0.0
		if !s.Exported.IsZero() {
			exported = float64(s.Exported.UnixMilli()) / 1000
		}
		gauge(descLakeExported, exported)
	}

	if c.m.src.Projections != nil && s.ProjectionsErr == nil && !s.At.IsZero() {
		for _, p := range s.Projections {
			if p.ThisBuild == nil {
				continue // a projection another build declared: its name is not this code's
			}
			f := projectionFigures(p)
			gauge(descProjLive, float64(f.live), p.Name)
			gauge(descProjLagEv, float64(f.lag.Events), p.Name)
			gauge(descProjLagSec, f.lag.Seconds, p.Name)
			gauge(descProjBuilding, float64(f.building), p.Name)
			gauge(descProjFailed, float64(f.failed), p.Name)
		}
	}

	for _, b := range s.Breakers {
		for _, st := range BreakerStates {
			gauge(descBreaker, b2f(b.State == st), b.System, st)
		}
	}

	for _, p := range s.Pools {
		gauge(descPoolAcquired, float64(p.Stat.AcquiredConns()), p.Pool)
		gauge(descPoolIdle, float64(p.Stat.IdleConns()), p.Pool)
		gauge(descPoolMax, float64(p.Stat.MaxConns()), p.Pool)
		counter(descPoolAcquires, float64(p.Stat.AcquireCount()), p.Pool)
		counter(descPoolWaits, float64(p.Stat.EmptyAcquireCount()), p.Pool)
		counter(descPoolWaitSec, p.Stat.AcquireDuration().Seconds(), p.Pool)
	}
}

// projFigures are one projection's series.
type projFigures struct {
	live, building, failed int64
	lag                    projection.Lag
}

func projectionFigures(p projection.Status) projFigures {
	var f projFigures
	if p.LiveVersion != nil {
		f.live = int64(*p.LiveVersion)
	}
	for _, v := range p.Versions {
		switch v.State {
		case projection.Live:
			if p.LiveVersion != nil && v.Version == *p.LiveVersion {
				f.lag = v.Lag
			}
		case projection.Building, projection.CatchingUp, projection.Verifying:
			f.building += max(0, v.Lag.Events)
		case projection.Failed:
			f.failed++
		}
	}
	return f
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// PublishDuration registers cairn_relay_publish_duration_seconds on reg
// and returns the relay's hook (relay.Options.OnPublished) that observes
// it: the time from sending a round of events to JetStream's last ack of
// it. The relay sends up to a batch (1,000 events) per round.
func PublishDuration(reg prometheus.Registerer) func(events int, took time.Duration) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cairn_relay_publish_duration_seconds",
		Help:    "Time from the relay sending a round of events (up to a batch) to JetStream's last ack of it.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .1, .5, 2.5},
	})
	reg.MustRegister(h)
	return func(_ int, took time.Duration) { h.Observe(took.Seconds()) }
}
